"""Google image sitemaps: pages manifests in (pages), sitemap files out (build), and which signed,
versioned URL each image gets (urls), with master lookup and signing passed in. `edge sitemap
build` (edge.cli.sitemaps) and serving at /sitemaps/ (edge.http.sitemaps) are edge's. Import the
parts from their modules."""
