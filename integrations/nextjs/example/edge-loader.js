"use client";
// next/image's custom loader (images.loaderFile): keyless URLs, for the browser.
import { createLoader } from "edge-image-cdn/next";

export default createLoader(JSON.parse(process.env.EDGE_RULES), { baseUrl: process.env.EDGE_ORIGIN });
