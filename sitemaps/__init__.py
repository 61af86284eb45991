"""Google image sitemaps: pages manifest in (pages), sitemap files out (build), `edge sitemap` (cli), serving (http).

Import the parts from their modules: `sitemaps.build.build_sitemaps`, `sitemaps.pages.read_pages`,
`sitemaps.http.routes`, `sitemaps.cli.register`.
"""
