// Types of edge-image-cdn's JavaScript client (src/index.js).

/** Rendition options, as in the URL grammar (README "URL grammar"); numbers or their text. */
export interface RenditionOptions {
  w?: number | string;
  h?: number | string;
  dpr?: number | string;
  fit?: "cover" | "contain" | "fill" | "inside" | "outside";
  g?: "center" | "n" | "s" | "e" | "w" | "ne" | "nw" | "se" | "sw" | "smart" | "focal";
  fx?: number | string;
  fy?: number | string;
  /** x,y,w,h of the master, before resizing */
  crop?: string | [number, number, number, number] | { x: number; y: number; w: number; h: number };
  q?: number | "auto";
  max_bytes?: number;
  fm?: "auto" | "avif" | "webp" | "jpeg" | "png" | "gif";
  ch?: string | Array<"dpr" | "width" | "save-data">;
  /** the master's version hash (/info's `version`) */
  v?: string;
  /** unix time after which the URL is refused */
  exp?: number;
  kid?: string;
}

export interface SigningKey {
  keyId: string;
  secret: string | Uint8Array;
}

/** One framing over viewports [min_viewport, until), as /rules.json describes it. */
export interface RuleRange {
  min_viewport: number;
  until: number | null;
  framing: {
    aspect: [number, number] | null;
    fit: string;
    gravity: string;
    focal: [number, number] | null;
    crop: [number, number, number, number] | null;
  };
  device_widths: number[];
  css_width: number;
  /** the candidates for a master large enough not to cap them: what keyless URLs may name */
  widths: number[];
}

export interface RuleDescription {
  description: string;
  masters: string[];
  sizes: string;
  dprs: number[];
  formats: Array<[string, number | "auto"]>;
  quality: number | "auto" | null;
  max_bytes: number | null;
  lcp: boolean;
  enhance: "auto" | "never";
  img: RuleRange;
  ranges: RuleRange[];
}

/** `GET /rules.json` or `edge rules export`. */
export interface Rules {
  schema: number;
  keyless: boolean;
  breakpoints: Record<string, number>;
  settings: { merge_step: number; max_width: number };
  limits: { max_output_side: number; max_output_pixels: number };
  enlargement: { auto: number; never: number };
  formats: Record<string, { mime: string; alpha: boolean; animation: boolean; lossy: boolean; named: boolean }>;
  rules: Record<string, RuleDescription>;
}

/** The fields of a master's `GET /info/{path}` document that planning reads. */
export interface MasterInfo {
  width: number;
  height: number;
  has_alpha?: boolean;
  animated?: boolean;
  version?: string;
  [field: string]: unknown;
}

export interface PlannedCandidate {
  width: number;
  height: number | null;
  options: RenditionOptions;
}

export interface PlannedSource {
  format: string;
  type: string | null;
  media: string | null;
  preloadMedia: string | null;
  width: number;
  height: number | null;
  candidates: PlannedCandidate[];
  fallback: PlannedCandidate;
}

export interface RulePlan {
  rule: string;
  lcp: boolean;
  sizes: string;
  img: PlannedSource;
  sources: PlannedSource[];
  pictureImg: PlannedSource;
}

export interface SourceSet extends PlannedSource {
  sizes: string;
  src: string;
  srcset: string;
  candidates: Array<{ url: string; width: number; height: number | null }>;
}

export interface PreloadHint {
  attributes: Record<string, string>;
  html: string;
  /** a `Link` header value */
  link: string;
}

export type Target = "img" | "picture";

export interface Markup {
  rule: string;
  master: string;
  version: string | null;
  lcp: boolean;
  img: SourceSet & { attributes: Record<string, string> };
  picture: {
    sources: Array<SourceSet & { attributes: Record<string, string> }>;
    img: SourceSet & { attributes: Record<string, string> };
  };
  defaultTarget: Target;
  imgHtml(): string;
  pictureHtml(): string;
  preloads(target?: Target): PreloadHint[];
  linkHeader(target?: Target): string;
}

export type Sign = (path: string, options: RenditionOptions) => Promise<string>;

export const MAX_SIZE: number;
export const ALT_PLACEHOLDER: string;
export function canonicalItems(options: RenditionOptions): Array<[string, string]>;
export function canonicalQuery(options: RenditionOptions): string;
export function canonicalPath(path: string): string;
export function mac(secret: string | Uint8Array, message: string): Promise<string>;
export function signUrl(
  path: string,
  options: RenditionOptions,
  key: SigningKey & { route?: "img" | "info"; baseUrl?: string },
): Promise<string>;
export function signer(key: SigningKey & { baseUrl?: string }): Sign;
export function snapWidth(rules: Rules, rule: string, width: number, opts?: { format?: string }): number;
export function keylessUrl(
  rules: Rules,
  rule: string,
  path: string,
  width: number,
  opts?: { format?: string; baseUrl?: string },
): string;
export function planRule(rules: Rules, rule: string, master?: MasterInfo): RulePlan;
export function buildMarkup(
  rules: Rules,
  rule: string,
  path: string,
  opts?: { master?: MasterInfo; sign?: Sign; baseUrl?: string; alt?: string; style?: string },
): Promise<Markup>;
export function ruleSource(src: string): { path: string; rule: string };
