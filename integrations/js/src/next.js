// next/image integration: a custom loader (keyless: it runs in the browser, where no secret may
// go) and, for Server Components, signed props for a plain <img>.
//
//   // next.config.mjs
//   import { imagesConfig } from "edge-image-cdn/next";
//   const rules = await (await fetch(process.env.EDGE_ORIGIN + "/rules.json")).json();
//   export default { env: { EDGE_RULES: JSON.stringify(rules), EDGE_ORIGIN: process.env.EDGE_ORIGIN },
//                    images: imagesConfig(rules, { loaderFile: "./edge-loader.js", rules: ["hero"] }) };
//
//   // edge-loader.js
//   import { createLoader } from "edge-image-cdn/next";
//   export default createLoader(JSON.parse(process.env.EDGE_RULES), { baseUrl: process.env.EDGE_ORIGIN });
//
//   // a page: the rule goes in the src's query
//   <Image src="/cat.jpg?rule=hero" {...ruleProps(rules, "hero")} alt="A cat" priority />

import { buildMarkup, canonicalPath, keylessUrl, ruleSource, signer } from "./index.js";

/**
 * A next/image loader: `{ src: "/cat.jpg?rule=hero", width }` -> the keyless URL of the rule's
 * declared width that serves `width` (Next's quality is the rule's business, so it is ignored).
 */
export function createLoader(rules, { baseUrl = "" } = {}) {
  return function edgeLoader({ src, width }) {
    const { path, rule } = ruleSource(src);
    return keylessUrl(rules, rule, path, width, { baseUrl });
  };
}

/**
 * `images` for next.config: the custom loader, and the widths Next puts in its srcsets set to
 * the widths the named rules declare. Next filters `imageSizes` out of srcsets for `vw` sizes,
 * so every width goes into `deviceSizes` (25 at most: more are thinned evenly).
 */
export function imagesConfig(rules, { loaderFile, rules: names = Object.keys(rules.rules) } = {}) {
  const widths = [...new Set(names.flatMap((name) => rules.rules[name].img.widths))].sort((a, b) => a - b);
  const deviceSizes = widths.length <= 25 ? widths : Array.from({ length: 25 }, (_, i) => widths[Math.round((i * (widths.length - 1)) / 24)]);
  return { loader: "custom", loaderFile, deviceSizes, imageSizes: [] };
}

/** `sizes`, `width` and `height` (without a master: its aspect, when the rule has one) for <Image>. */
export function ruleProps(rules, rule) {
  const r = rules.rules[rule];
  const aspect = r.img.framing.aspect;
  const width = Math.min(r.img.css_width, r.img.widths[r.img.widths.length - 1]);
  return { sizes: r.sizes, width, height: aspect ? Math.max(1, Math.round((width * aspect[1]) / aspect[0])) : undefined };
}

/**
 * For a Server Component: the attributes of a plain <img> with signed, versioned URLs, exactly
 * the server's `/srcset/{rule}/{path}` markup (`edge srcset`), from the master's /info document.
 * Needs the signing key: never call it from client code.
 */
export async function signedImageProps(rules, rule, path, { origin, keyId, secret, alt, info }) {
  const master = info ?? (await (await fetch(`${origin.replace(/\/+$/, "")}/info/${canonicalPath(path)}`)).json());
  const markup = await buildMarkup(rules, rule, path, { master, sign: signer({ keyId, secret, baseUrl: origin }), alt });
  const { srcset, fetchpriority, ...rest } = markup.img.attributes;
  return { ...rest, srcSet: srcset, ...(fetchpriority ? { fetchPriority: fetchpriority } : {}) };
}
