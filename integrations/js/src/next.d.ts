// Types of edge-image-cdn/next (src/next.js).
import type { MasterInfo, Rules } from "./index.js";

export interface LoaderProps {
  src: string;
  width: number;
  quality?: number;
}

export function createLoader(rules: Rules, opts?: { baseUrl?: string }): (props: LoaderProps) => string;
export function imagesConfig(
  rules: Rules,
  opts?: { loaderFile?: string; rules?: string[] },
): { loader: "custom"; loaderFile?: string; deviceSizes: number[]; imageSizes: number[] };
export function ruleProps(rules: Rules, rule: string): { sizes: string; width: number; height?: number };
export function signedImageProps(
  rules: Rules,
  rule: string,
  path: string,
  opts: { origin: string; keyId: string; secret: string; alt: string; info?: MasterInfo },
): Promise<Record<string, string>>;
