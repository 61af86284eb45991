// Images come from an edge-image-cdn server: the service reads its /rules.json and, with
// EDGE_KEY_ID and EDGE_SECRET set at build time, signs versioned URLs (keyless URLs otherwise).
import { defineConfig } from "astro/config";

export default defineConfig({
  image: {
    service: { entrypoint: "edge-image-cdn/astro", config: { origin: process.env.EDGE_ORIGIN ?? "http://127.0.0.1:8080" } },
  },
  telemetry: false,
});
