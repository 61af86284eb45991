"""Where masters live and what version each one is.

store (MasterInfo, the MasterStore protocol), local (a directory), s3 (a bucket), http (allowlisted
HTTPS URLs), routed (absolute URLs to http, the rest to the primary store), index (version hashes
and headers, looked up once per master identity). Import from the modules themselves.
"""
