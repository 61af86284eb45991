"""The shared vocabulary, imported by every package: standard library only (and blake3 for keys).

errors (Problem, Cancelled), formats (the table of output formats), request (rendition options,
their grammar and canonical form), limits (the limits and the one copy of the size arithmetic),
header (what a master's header says), keys (rendition keys), concurrency (single-flight,
cancellation, the CPU count), paths (safe master paths). Import from the modules themselves.
"""
