// The example app's configuration: the rules come from the edge-image-cdn server at build time
// (`edge rules export > rules.json` and an import work as well), and next/image uses its loader.
import { imagesConfig } from "edge-image-cdn/next";

const origin = process.env.EDGE_ORIGIN ?? "http://127.0.0.1:8080";
const response = await fetch(`${origin}/rules.json`);
if (!response.ok) throw new Error(`${origin}/rules.json answered ${response.status}: is the edge server running?`);
const rules = await response.json();

export default {
  // Inlined into the bundles: the loader reads them in the browser.
  env: { EDGE_RULES: JSON.stringify(rules), EDGE_ORIGIN: origin },
  images: imagesConfig(rules, { loaderFile: "./edge-loader.js", rules: ["card"] }),
  // The JS package is a local folder (file:../../js): let the bundler follow the link.
  turbopack: { root: new URL("../../..", import.meta.url).pathname },
  outputFileTracingRoot: new URL("../../..", import.meta.url).pathname,
};
