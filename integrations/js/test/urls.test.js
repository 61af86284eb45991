// URL spelling the vectors do not cover: a master under a folder named like a route, keyless
// widths snapped to the rule's, and options refused by name.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { canonicalPath, keylessUrl, signUrl, snapWidth } from "../src/index.js";

const rules = JSON.parse(readFileSync(new URL("../../vectors/rules.json", import.meta.url), "utf8")).examples;
const key = { keyId: "k1", secret: "test-secret-0123456789abcdef" };

test("a master under img/ keeps its folder; a leading slash is only a slash", async () => {
  assert.match(await signUrl("img/cat.jpg", { w: 10 }, key), /^\/img\/img\/cat\.jpg\?kid=k1&w=10&s=/);
  assert.equal(await signUrl("/cat.jpg", { w: 10 }, key), await signUrl("cat.jpg", { w: 10 }, key));
});

test("keyless widths snap to the smallest declared one that covers them, else the widest", () => {
  const widths = rules.rules.card.img.widths;
  assert.equal(snapWidth(rules, "card", 1), widths[0]);
  assert.equal(snapWidth(rules, "card", widths[2] + 1), widths[3]);
  assert.equal(snapWidth(rules, "card", 100000), widths[widths.length - 1]);
  assert.equal(keylessUrl(rules, "card", "a b/ü.jpg", 500, { baseUrl: "https://img.example.com/" }),
    `https://img.example.com/img/a%20b/%C3%BC.jpg?rule=card&w=${snapWidth(rules, "card", 500)}`);
  assert.throws(() => keylessUrl(rules, "nope", "a.jpg", 100), /no rule named "nope"/);
});

test("options outside the grammar are refused by name", async () => {
  await assert.rejects(signUrl("a.jpg", { w: 0 }, key), /option "w" must be an integer 1\.\.8192/);
  await assert.rejects(signUrl("a.jpg", { width: 10 }, key), /unknown option "width"/);
  await assert.rejects(signUrl("a.jpg", { fx: 0.2 }, key), /fx needs g=focal/);
  await assert.rejects(signUrl("a.jpg", { w: 10 }, {}), /needs \{ keyId, secret \}/);
  assert.equal(canonicalPath("!*'()~"), "%21%2A%27%28%29~");
});
