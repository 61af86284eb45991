// edge-image-cdn client: URLs, signatures and srcsets for an edge-image-cdn server, without dependencies.
//
// - keylessUrl / snapWidth: unsigned URLs for the renditions a rule declares (browsers, loaders);
// - signUrl: the server's HMAC signature, in Node and edge runtimes (Web Crypto), byte for byte
//   what `edge sign` prints;
// - planRule / buildMarkup: the srcset, sizes, <img> and <picture> markup `edge srcset` prints,
//   from the rules' public description (`GET /rules.json`, `edge rules export`) and, for a
//   master's exact candidates, its /info document.
//
// The canonical form and the planning follow the Python code they mirror (origin/core/request.py,
// edge/urls.py, edge/signing.py, rules/srcset.py, rules/markup.py); the shared test vectors in
// integrations/vectors keep both in step.

export const MAX_SIZE = 8192;
const MAC_BYTES = 16;
const FITS = ["cover", "contain", "fill", "inside", "outside"];
const GRAVITIES = ["center", "n", "s", "e", "w", "ne", "nw", "se", "sw", "smart", "focal"];
const FORMATS = ["auto", "avif", "webp", "jpeg", "png", "gif"];
const HINTS = ["dpr", "save-data", "width"];
const DEFAULTS = { dpr: 1, fit: "cover", g: "center", fm: "auto" };
export const ALT_PLACEHOLDER = "TODO: describe this image";

// --- options: parse, check and spell them the one canonical way the signature covers ----------

function fail(name, expected, value) {
  throw new RangeError(`option ${JSON.stringify(name)} must be ${expected}, got ${JSON.stringify(String(value))}`);
}

function integer(lo, hi) {
  return (name, value) => {
    const text = String(value);
    if (!/^[0-9]{1,12}$/.test(text) || Number(text) < lo || Number(text) > hi) fail(name, `an integer ${lo}..${hi}`, value);
    return Number(text);
  };
}

function decimal(lo, hi, places) {
  return (name, value) => {
    const text = String(value);
    const m = /^[0-9]{1,3}(\.([0-9]{1,4}))?$/.exec(text);
    if (!m || (m[2] || "").length > places || Number(text) < lo || Number(text) > hi) {
      fail(name, `a number ${lo}..${hi} with at most ${places} decimals`, value);
    }
    return Number(text);
  };
}

function oneOf(choices) {
  return (name, value) => {
    if (!choices.includes(value)) fail(name, `one of ${choices.join(", ")}`, value);
    return value;
  };
}

const PARSERS = {
  w: integer(1, MAX_SIZE),
  h: integer(1, MAX_SIZE),
  dpr: decimal(1, 4, 2),
  fit: oneOf(FITS),
  g: oneOf(GRAVITIES),
  fx: decimal(0, 1, 4),
  fy: decimal(0, 1, 4),
  crop: (name, value) => {
    const parts = Array.isArray(value) ? value.map(String) : typeof value === "object" && value !== null
      ? [value.x, value.y, value.w, value.h].map(String)
      : String(value).split(",");
    if (parts.length !== 4 || !parts.every((p) => /^[0-9]{1,12}$/.test(p))) fail(name, "four integers x,y,w,h", value);
    if (Number(parts[2]) < 1 || Number(parts[3]) < 1) fail(name, "a region with w and h at least 1", value);
    return parts.map(Number).join(",");
  },
  q: (name, value) => (value === "auto" ? "auto" : integer(1, 100)(name, value)),
  max_bytes: integer(100, 50_000_000),
  fm: oneOf(FORMATS),
  ch: (name, value) => {
    const names = Array.isArray(value) ? value : String(value).split(",");
    if (!names.length || names.some((n) => !HINTS.includes(n))) fail(name, `a comma-separated list of ${HINTS.join(", ")}`, value);
    return [...new Set(names)].sort().join(",");
  },
  v: (name, value) => {
    if (!/^[0-9a-f]{8,64}$/.test(String(value))) fail(name, "a lowercase hex version hash of 8..64 digits", value);
    return String(value);
  },
  exp: integer(0, 10 ** 12 - 1),
  kid: (name, value) => {
    if (!/^[A-Za-z0-9_.-]{1,32}$/.test(String(value))) fail(name, "a key id of 1..32 letters, digits, '_', '.' or '-'", value);
    return String(value);
  },
};

const FLOATS = new Set(["dpr", "fx", "fy"]);

function spell(name, value) {
  // Python's f"{value:.4f}".rstrip("0").rstrip("."): the parsers allow at most 4 decimals.
  return FLOATS.has(name) ? value.toFixed(4).replace(/0+$/, "").replace(/\.$/, "") : String(value);
}

/** The options checked against the server's grammar, defaults dropped, sorted: [[name, text], ...]. */
export function canonicalItems(options) {
  const values = {};
  for (const [name, value] of Object.entries(options)) {
    if (value === undefined || value === null) continue;
    const parse = PARSERS[name];
    if (!parse) throw new RangeError(`unknown option ${JSON.stringify(name)} (known: ${Object.keys(PARSERS).sort().join(", ")})`);
    values[name] = parse(name, value);
  }
  if ((values.fx !== undefined || values.fy !== undefined) && values.g !== "focal") {
    throw new RangeError(`${values.fx !== undefined ? "fx" : "fy"} needs g=focal`);
  }
  const items = [];
  for (const name of Object.keys(values).sort()) {
    const value = values[name];
    if (DEFAULTS[name] !== undefined && value === DEFAULTS[name]) continue;
    if (values.g === "focal" && (name === "fx" || name === "fy") && value === 0.5) continue; // the focal default
    items.push([name, spell(name, value)]);
  }
  return items;
}

export function canonicalQuery(options) {
  return canonicalItems(options).map(([k, v]) => `${k}=${v}`).join("&");
}

/** A master path percent-encoded as the server signs it (Python's quote(path, safe="/")). */
export function canonicalPath(path) {
  let out = "";
  for (const byte of new TextEncoder().encode(path)) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9_.~/-]/.test(c) ? c : "%" + byte.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

// --- signatures --------------------------------------------------------------------------------

const keys = new Map(); // secret -> CryptoKey: importing a key costs more than the HMAC

async function subtle() {
  if (globalThis.crypto?.subtle) return globalThis.crypto.subtle;
  const { webcrypto } = await import("node:crypto"); // Node 18 without the global
  return webcrypto.subtle;
}

async function hmacKey(secret) {
  const raw = typeof secret === "string" ? new TextEncoder().encode(secret) : secret;
  const id = typeof secret === "string" ? secret : Array.from(secret).join(",");
  let key = keys.get(id);
  if (!key) {
    key = (await subtle()).importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    keys.set(id, key);
  }
  return key;
}

function base64url(bytes) {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The `s=` value for a canonical URL (`/img/{path}?{query}`): HMAC-SHA256, 16 bytes, base64url. */
export async function mac(secret, message) {
  const digest = await (await subtle()).sign("HMAC", await hmacKey(secret), new TextEncoder().encode(message));
  return base64url(new Uint8Array(digest).slice(0, MAC_BYTES));
}

/**
 * The signed path and query of a rendition (`route` "info" for an /info URL), as `edge sign` prints it:
 * `await signUrl("cat.jpg", { w: 640, fm: "avif" }, { keyId: "k1", secret })`.
 * Server-side only: the secret must never reach a browser.
 */
export async function signUrl(path, options, { keyId, secret, route = "img", baseUrl = "" }) {
  if (!keyId || !secret) throw new TypeError("signUrl needs { keyId, secret }: a key of the server's [signing] keys");
  const master = String(path).replace(/^\/+/, ""); // "/cat.jpg" names the master cat.jpg
  const query = canonicalQuery({ ...options, kid: options.kid ?? keyId });
  const signed = `/${route}/${canonicalPath(master)}?${query}`;
  return `${baseUrl.replace(/\/+$/, "")}${signed}&s=${await mac(secret, signed)}`;
}

/** A `sign(path, options)` for buildMarkup, bound to one key and base URL. */
export function signer({ keyId, secret, baseUrl = "" }) {
  return (path, options) => signUrl(path, options, { keyId, secret, baseUrl });
}

// --- keyless URLs ------------------------------------------------------------------------------

function ruleOf(rules, name) {
  const rule = rules?.rules?.[name];
  if (!rule) throw new RangeError(`no rule named ${JSON.stringify(name)} (rules: ${Object.keys(rules?.rules ?? {}).join(", ") || "none"})`);
  return rule;
}

function rangesFor(rule, format) {
  if (!format || format === "auto") return [rule.img];
  return rule.ranges;
}

/** The rule's declared width that serves `width`: the smallest as wide, else the widest. */
export function snapWidth(rules, ruleName, width, { format } = {}) {
  const widths = [...new Set(rangesFor(ruleOf(rules, ruleName), format).flatMap((r) => r.widths))].sort((a, b) => a - b);
  return widths.find((w) => w >= width) ?? widths[widths.length - 1];
}

/**
 * An unsigned URL for a rendition the rule declares: `/img/{path}?rule=R&w=W[&fm=F]`, the width
 * snapped to a declared one. The server answers it only under closed world (`rules.keyless`).
 */
export function keylessUrl(rules, ruleName, path, width, { format, baseUrl = "" } = {}) {
  return keylessPath(ruleName, path, snapWidth(rules, ruleName, width, { format }), format, baseUrl);
}

// The keyless URL of a width that is already a declared one (a planned candidate).
function keylessPath(ruleName, path, width, format, baseUrl) {
  const fm = format && format !== "auto" ? `&fm=${format}` : "";
  const master = canonicalPath(String(path).replace(/^\/+/, ""));
  return `${baseUrl.replace(/\/+$/, "")}/img/${master}?rule=${encodeURIComponent(ruleName)}&w=${width}${fm}`;
}

/**
 * `"/cat.jpg?rule=hero"` -> { path: "cat.jpg", rule: "hero" }: how framework components name the
 * rule of an image whose props have no room for it (next/image's loader, Astro's service).
 */
export function ruleSource(src) {
  const [path, query = ""] = String(src).split("?");
  const rule = new URLSearchParams(query).get("rule");
  if (!rule) throw new RangeError(`edge-image-cdn: ${JSON.stringify(src)} names no rule: write "/cat.jpg?rule=hero"`);
  return { path: decodeURIComponent(path.replace(/^\/+/, "")), rule };
}

// --- planning (rules/srcset.py) ----------------------------------------------------------------

function roundHalfEven(n, d) {
  // round(n / d) for positive integers, ties to even, as Python rounds a Fraction.
  const q = Math.floor(n / d);
  const twice = 2 * (n - q * d);
  return twice > d || (twice === d && q % 2 === 1) ? q + 1 : q;
}

function outputHeight(width, [num, den]) {
  return Math.max(1, roundHalfEven(width * den, num));
}

function isqrt(n) {
  let r = Math.floor(Math.sqrt(n));
  while (r * r > n) r -= 1;
  while ((r + 1) * (r + 1) <= n) r += 1;
  return r;
}

function largestWidth(aspect, limits) {
  const [num, den] = aspect;
  const side = limits.max_output_side;
  let width = Math.min(side, Math.floor((side * num) / den), isqrt(Math.floor((limits.max_output_pixels * num) / den)));
  while (width > 1 && (outputHeight(width, aspect) > side || width * outputHeight(width, aspect) > limits.max_output_pixels)) {
    width -= 1;
  }
  return Math.max(1, width);
}

function clipCrop(crop, width, height) {
  if (!crop) return [0, 0, width, height];
  const [x, y, w, h] = crop;
  const x0 = Math.min(x, width), y0 = Math.min(y, height);
  const x1 = Math.min(x + w, width), y1 = Math.min(y + h, height);
  if (x1 <= x0 || y1 <= y0) throw new RangeError(`crop ${crop.join(",")} lies outside the ${width}x${height} master`);
  return [x0, y0, x1 - x0, y1 - y0];
}

function merge(widths, step) {
  const kept = [];
  for (const w of [...new Set(widths)].sort((a, b) => b - a)) {
    if (!kept.length || kept[kept.length - 1] >= w * (1 + step)) kept.push(w);
  }
  return kept.reverse();
}

function mediaQuery(lo, until) {
  const parts = [];
  if (lo > 0) parts.push(`(min-width: ${lo}px)`);
  if (until !== null && until !== undefined) parts.push(`(max-width: ${Number((until - 0.02).toPrecision(6))}px)`);
  return parts.join(" and ") || null;
}

function framingOptions(framing, width, height) {
  if (!framing.aspect) return { w: width, crop: framing.crop ?? undefined };
  const [fx, fy] = framing.focal ?? [undefined, undefined];
  return { w: width, h: height, fit: framing.fit, g: framing.gravity, fx, fy, crop: framing.crop ?? undefined };
}

function plannedRange(rules, rule, range, master) {
  const framing = range.framing;
  if (!master) {
    const widths = range.widths;
    return { range, widths, aspect: framing.aspect, width: Math.max(1, Math.min(range.css_width, widths[widths.length - 1])) };
  }
  const [, , bw, bh] = clipCrop(framing.crop, master.width, master.height);
  const aspect = framing.aspect ?? [bw, bh];
  const real = framing.aspect ? Math.min(bw, Math.floor((bh * aspect[0]) / aspect[1])) : bw;
  const cap = Math.max(1, Math.min(real * rules.enlargement[rule.enhance], rules.settings.max_width, largestWidth(aspect, rules.limits)));
  const widths = merge(range.device_widths.map((w) => Math.min(w, cap)), rules.settings.merge_step);
  return { range, widths, aspect, width: Math.max(1, Math.min(range.css_width, widths[widths.length - 1])) };
}

function plannedSource(rules, r, format, quality, maxBytes) {
  const q = format === "auto" || rules.formats[format].lossy ? quality : null;
  const candidates = r.widths.map((w) => {
    const h = r.aspect ? outputHeight(w, r.aspect) : null;
    const options = { ...framingOptions(r.range.framing, w, h), fm: format, q: q ?? undefined, max_bytes: maxBytes ?? undefined };
    return { width: w, height: h, options };
  });
  return {
    format,
    type: format === "auto" ? null : rules.formats[format].mime,
    media: mediaQuery(r.range.min_viewport, null),
    preloadMedia: mediaQuery(r.range.min_viewport, r.range.until),
    width: r.width,
    height: r.aspect ? outputHeight(r.width, r.aspect) : null,
    candidates,
    fallback: candidates.find((c) => c.width >= r.width) ?? candidates[candidates.length - 1],
  };
}

function keeps(rules, format, { alpha, animated }) {
  const row = rules.formats[format];
  return (row.alpha || !alpha) && (row.animation || !animated);
}

function fallbackFormat(rules, master) {
  return Object.entries(rules.formats).find(([name, f]) => !f.named && keeps(rules, name, master))[0];
}

/**
 * Every srcset a rule's markup needs: { sizes, img, sources, pictureImg }, as rules/srcset.py plans
 * them. With `master` (its /info document: width, height, has_alpha, animated) the candidates are
 * that master's; without, the widths the rule declares for any master (keyless URLs snap them).
 */
export function planRule(rules, ruleName, master) {
  const rule = ruleOf(rules, ruleName);
  const info = master ? { alpha: !!master.has_alpha, animated: !!master.animated } : { alpha: false, animated: false };
  const img = plannedSource(rules, plannedRange(rules, rule, rule.img, master), "auto", rule.quality, rule.max_bytes);
  const formats = rule.formats.slice(0, -1).filter(([f]) => !info.animated || rules.formats[f].animation);
  let last = rule.formats[rule.formats.length - 1];
  if (!keeps(rules, last[0], info)) last = [fallbackFormat(rules, info), 0];
  const ranges = rule.ranges.map((range) => plannedRange(rules, rule, range, master));
  const sources = [];
  for (const r of ranges.slice(1).reverse()) {
    for (const [f, q] of [...formats, last]) sources.push(plannedSource(rules, r, f, q, rule.max_bytes));
  }
  for (const [f, q] of formats) sources.push(plannedSource(rules, ranges[0], f, q, rule.max_bytes));
  const pictureImg = plannedSource(rules, ranges[0], last[0], last[1], rule.max_bytes);
  return { rule: ruleName, lcp: rule.lcp, sizes: rule.sizes, img, sources, pictureImg };
}

// --- markup (rules/markup.py) ------------------------------------------------------------------

function escape(value) {
  return String(value).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#x27;");
}

function attrs(attributes) {
  return Object.entries(attributes).filter(([, v]) => v !== null && v !== undefined).map(([k, v]) => `${k}="${escape(v)}"`).join(" ");
}

function quoted(value) {
  return '"' + value.replace(/\\/g, "\\\\").replace(/"/g, '\\"') + '"';
}

/**
 * The markup `edge srcset` prints, with every URL made by `url(path, options)`:
 * - `{ sign }` (from `signer({keyId, secret, baseUrl})`) and `master` with its `version`: signed,
 *   versioned URLs, byte for byte the server's (server-side only);
 * - otherwise keyless URLs (`baseUrl` prefixes them).
 * Returns { img, picture, imgHtml(), pictureHtml(), preloads(target), linkHeader(target), defaultTarget }.
 */
export async function buildMarkup(rules, ruleName, path, { master, sign, baseUrl = "", alt = ALT_PLACEHOLDER, style } = {}) {
  const planned = planRule(rules, ruleName, master);
  if (sign && !master?.version) throw new TypeError("signed markup needs the master's /info document (its version and size)");
  const url = sign
    ? (options) => sign(path, { ...options, v: master.version })
    : async (options) => keylessPath(ruleName, path, options.w, options.fm, baseUrl); // planned: already declared
  const signed = async (source) => {
    const candidates = await Promise.all(source.candidates.map(async (c) => ({ url: await url(c.options), width: c.width, height: c.height })));
    return {
      ...source,
      sizes: planned.sizes,
      src: await url(source.fallback.options),
      candidates,
      srcset: candidates.map((c) => `${c.url} ${c.width}w`).join(", "),
    };
  };
  const img = await signed(planned.img);
  const sources = await Promise.all(planned.sources.map(signed));
  const pictureImg = await signed(planned.pictureImg);
  const imgAttributes = (image) => {
    const a = { src: image.src, srcset: image.srcset, sizes: image.sizes, width: String(image.width), height: image.height === null ? null : String(image.height), alt, loading: planned.lcp ? "eager" : "lazy", decoding: "async" };
    if (planned.lcp) a.fetchpriority = "high";
    if (style) a.style = style;
    return a;
  };
  const sourceAttributes = (s) => ({ type: s.type, media: s.media, srcset: s.srcset, sizes: s.sizes, width: String(s.width), height: s.height === null ? null : String(s.height) });
  const defaultTarget = sources.some((s) => s.media) ? "picture" : "img";
  const preloads = (target = defaultTarget) => {
    if (!planned.lcp) return [];
    // <img>: its one srcset; <picture>: the first (preferred) source of each viewport range.
    const list = target === "img" ? [{ ...img, type: null, preloadMedia: null }] : firstPerMedia([...sources, pictureImg]);
    return list.map((s) => {
      const a = { rel: "preload", as: "image", imagesrcset: s.srcset, imagesizes: s.sizes };
      if (s.type) a.type = s.type;
      if (s.preloadMedia) a.media = s.preloadMedia;
      a.fetchpriority = "high";
      const link = [`<${s.src}>`, "rel=preload", "as=image", `imagesrcset=${quoted(s.srcset)}`, `imagesizes=${quoted(s.sizes)}`];
      if (s.type) link.push(`type=${quoted(s.type)}`);
      if (s.preloadMedia) link.push(`media=${quoted(s.preloadMedia)}`);
      link.push("fetchpriority=high");
      return { attributes: a, html: `<link ${attrs(a)}>`, link: link.join("; ") };
    });
  };
  return {
    rule: ruleName,
    master: path,
    version: master?.version ?? null,
    lcp: planned.lcp,
    img: { ...img, attributes: imgAttributes(img) },
    picture: { sources: sources.map((s) => ({ ...s, attributes: sourceAttributes(s) })), img: { ...pictureImg, attributes: imgAttributes(pictureImg) } },
    defaultTarget,
    imgHtml: () => `<img ${attrs(imgAttributes(img))}>`,
    pictureHtml: () => ["<picture>", ...sources.map((s) => `  <source ${attrs(sourceAttributes(s))}>`), `  <img ${attrs(imgAttributes(pictureImg))}>`, "</picture>"].join("\n"),
    preloads,
    linkHeader: (target = defaultTarget) => preloads(target).map((p) => p.link).join(", "),
  };
}

function firstPerMedia(sources) {
  const first = new Map();
  for (const s of sources) if (!first.has(s.preloadMedia)) first.set(s.preloadMedia, s);
  return [...first.values()];
}
