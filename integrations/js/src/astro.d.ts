// Types of edge-image-cdn/astro (src/astro.js): an Astro ExternalImageService.
declare const service: {
  validateOptions(options: Record<string, any>): Record<string, any>;
  getURL(options: Record<string, any>, imageConfig: Record<string, any>): Promise<string>;
  getSrcSet(options: Record<string, any>, imageConfig: Record<string, any>): Promise<Array<{ transform: Record<string, any>; descriptor: string; attributes: Record<string, any> }>>;
  getHTMLAttributes(options: Record<string, any>, imageConfig: Record<string, any>): Promise<Record<string, any>>;
};
export default service;
