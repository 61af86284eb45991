// The Astro image service alone (the example app in integrations/astro is built by the Python
// suite against a real server): keyless srcsets from the rules, a clear error without a rule.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import service from "../src/astro.js";

const rules = JSON.parse(readFileSync(new URL("../../vectors/rules.json", import.meta.url), "utf8")).examples;
const imageConfig = { service: { entrypoint: "edge-image-cdn/astro", config: { origin: "https://img.example.com", rules } } };

test("keyless: the src, srcset and sizes of the rule, for a master of any size", async () => {
  const saved = process.env.EDGE_SECRET;
  delete process.env.EDGE_SECRET;
  try {
    const options = service.validateOptions({ src: "/photos/été.jpg?rule=card", width: 608, height: 405, alt: "x", loading: "lazy" });
    assert.equal(await service.getURL(options, imageConfig), "https://img.example.com/img/photos/%C3%A9t%C3%A9.jpg?rule=card&w=640");
    const srcset = await service.getSrcSet(options, imageConfig);
    assert.deepEqual(srcset.map((s) => s.descriptor), rules.rules.card.img.widths.map((w) => `${w}w`));
    const urls = await Promise.all(srcset.map((s) => service.getURL(s.transform, imageConfig)));
    assert.ok(urls.every((u, i) => u.endsWith(`rule=card&w=${rules.rules.card.img.widths[i]}`)));
    const attributes = await service.getHTMLAttributes(options, imageConfig);
    assert.deepEqual(attributes, { alt: "x", loading: "lazy", width: 608, height: 405, sizes: rules.rules.card.sizes });
    const avif = await service.getURL({ ...options, format: "avif" }, { service: { config: { ...imageConfig.service.config } } });
    assert.match(avif, /rule=card&w=640&fm=avif$/);
  } finally {
    if (saved !== undefined) process.env.EDGE_SECRET = saved;
  }
});

test("a src without a rule is a build error that says how to write it", () => {
  assert.throws(() => service.validateOptions({ src: "/cat.jpg", width: 100 }), /rule=hero/);
});
