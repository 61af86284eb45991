// An Astro image service (image.service.entrypoint = "edge-image-cdn/astro"): <Image> and
// getImage() get the rule's srcset from an edge-image-cdn server. It runs at build time (or on
// the server with SSR), never in the browser, so it signs when it has a key: EDGE_KEY_ID and
// EDGE_SECRET in the environment (or keyId/secret in the service config), keyless URLs otherwise.
//
//   // astro.config.mjs
//   export default defineConfig({ image: { service: { entrypoint: "edge-image-cdn/astro",
//     config: { origin: "https://img.example.com" } } } });   // rules: fetched from origin/rules.json
//
//   ---
//   import { Image } from "astro:assets";
//   ---
//   <Image src="/cat.jpg?rule=card" width={608} height={405} alt="A cat" />
//
// Signed URLs are versioned: the service reads each master's /info once per build.

import { canonicalPath, keylessUrl, planRule, ruleSource, signUrl } from "./index.js";

const CONSUMED = new Set(["src", "width", "height", "format", "quality", "densities", "widths", "formats", "layout", "fit", "position", "inferSize"]);
const memo = new Map(); // url -> Promise of its JSON: once per build

function json(url) {
  if (!memo.has(url)) {
    memo.set(url, fetch(url).then((r) => {
      if (!r.ok) throw new Error(`edge-image-cdn: ${url} answered ${r.status}`);
      return r.json();
    }));
  }
  return memo.get(url);
}

function settings(imageConfig) {
  const config = imageConfig?.service?.config ?? {};
  const env = globalThis.process?.env ?? {};
  const origin = String(config.origin ?? env.EDGE_ORIGIN ?? "").replace(/\/+$/, "");
  if (!origin && !config.rules) throw new Error("edge-image-cdn: set image.service.config.origin (or EDGE_ORIGIN)");
  return { origin, rules: config.rules, keyId: config.keyId ?? env.EDGE_KEY_ID, secret: config.secret ?? env.EDGE_SECRET };
}

async function context(options, imageConfig) {
  const s = settings(imageConfig);
  const rules = s.rules ?? (await json(`${s.origin}/rules.json`));
  const { path, rule } = ruleSource(options.src);
  const format = options.format && options.format !== "auto" ? options.format : undefined;
  const signed = Boolean(s.keyId && s.secret);
  const info = signed ? await json(`${s.origin}/info/${canonicalPath(path)}`) : undefined;
  return { ...s, rules, path, rule, format, signed, info };
}

function sourceFor(plan, format) {
  if (!format) return plan.img;
  const source = [...plan.sources, plan.pictureImg].find((s) => s.format === format && s.media === null);
  if (!source) throw new RangeError(`edge-image-cdn: rule ${plan.rule} declares no ${format} source`);
  return source;
}

const service = {
  validateOptions(options) {
    if (typeof options.src !== "string") throw new TypeError("edge-image-cdn: src must be a master path string, \"/cat.jpg?rule=card\"");
    ruleSource(options.src); // names a rule, or a clear error at build time
    return options;
  },

  async getURL(options, imageConfig) {
    const c = await context(options, imageConfig);
    if (!c.signed) return keylessUrl(c.rules, c.rule, c.path, options.width ?? 1, { format: c.format, baseUrl: c.origin });
    const source = sourceFor(planRule(c.rules, c.rule, c.info), c.format);
    const width = options.width ?? source.width;
    const candidate = source.candidates.find((x) => x.width >= width) ?? source.candidates[source.candidates.length - 1];
    return signUrl(c.path, { ...candidate.options, v: c.info.version }, { keyId: c.keyId, secret: c.secret, baseUrl: c.origin });
  },

  async getSrcSet(options, imageConfig) {
    const c = await context(options, imageConfig);
    const source = sourceFor(planRule(c.rules, c.rule, c.info), c.format);
    return source.candidates.map((x) => ({ transform: { ...options, width: x.width, height: undefined }, descriptor: `${x.width}w`, attributes: {} }));
  },

  async getHTMLAttributes(options, imageConfig) {
    const c = await context(options, imageConfig);
    // What the service consumed stays out of the <img>; the rest (alt, class, loading...) passes.
    const attributes = Object.fromEntries(Object.entries(options).filter(([name]) => !CONSUMED.has(name)));
    return { ...attributes, width: options.width, height: options.height, sizes: options.sizes ?? c.rules.rules[c.rule].sizes };
  },
};

export default service;
