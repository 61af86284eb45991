// The shared test vectors (integrations/vectors, made by tests/support/vectors.py from the Python
// code): signatures and markup byte for byte what the server's own code makes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { buildMarkup, signUrl, signer } from "../src/index.js";

const load = (name) => JSON.parse(readFileSync(new URL(`../../vectors/${name}`, import.meta.url), "utf8"));
const signing = load("signing.json");
const markup = load("markup.json");
const ruleSets = load("rules.json");

test("signUrl matches every signing vector", async () => {
  for (const c of signing.cases) {
    const key = signing.keys.find((k) => k.id === (c.options.kid ?? signing.keys[0].id));
    const url = await signUrl(c.path, c.options, { keyId: key.id, secret: key.secret, route: c.route });
    assert.equal(url, c.url, `${c.path} ${JSON.stringify(c.options)}`);
  }
});

test("buildMarkup prints what edge srcset prints, for every rule and master", async () => {
  const sign = signer({ keyId: markup.key.id, secret: markup.key.secret, baseUrl: markup.base_url });
  for (const c of markup.cases) {
    const rules = ruleSets[c.rule_set];
    const label = `${c.rule_set}/${c.rule} ${c.path}`;
    const made = buildMarkup(rules, c.rule, c.path, { master: c.master, sign, alt: "A <test> & 'quote'" });
    if (c.error) {
      await assert.rejects(made, /lies outside/, label);
      continue;
    }
    const m = await made;
    assert.equal(m.imgHtml(), c.img_html, label);
    assert.equal(m.pictureHtml(), c.picture_html, label);
    assert.equal(m.linkHeader("img"), c.link.img, label);
    assert.equal(m.linkHeader("picture"), c.link.picture, label);
    assert.equal(m.preloads("img").map((p) => p.html).join("\n"), c.preload_html.img, label);
    assert.equal(m.preloads("picture").map((p) => p.html).join("\n"), c.preload_html.picture, label);
  }
});
