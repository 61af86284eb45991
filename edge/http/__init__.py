"""The HTTP app: create_app (app), the rendition endpoint (images), markup and preload (markup),
sitemaps (sitemaps), operations (ops), RFC 9457 problem responses (problems)."""
