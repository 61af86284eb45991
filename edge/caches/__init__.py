"""Rendition cache tiers, nearest first: memory (memory), disk (disk), a shared S3 bucket (s3),
stacked by TieredCache (tiered); disk and S3 store entries in one checksummed format (entry)."""
