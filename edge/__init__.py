"""HTTP delivery: URL grammar and signing, negotiation, headers, caches, the app and the CLI."""
