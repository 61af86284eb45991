"""The `edge` subcommands: the module that registers each, and its line in `edge --help`.

`edge --help` lists them from here without importing a single command module (each loads the
server, S3, model or image libraries it needs); a command's own module is imported only when
that command runs (edge.cli.build_parser).
"""

from __future__ import annotations

# name -> (module, help); a module may register several names (and aliases, such as version).
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("edge.cli.serve", "run the HTTP server"),
    "sign": ("edge.cli.sign", "print a signed, versioned URL for a master"),
    "hash": ("edge.cli.sign", "print a master's version hash (alias: version)"),
    "purge": ("edge.cli.caches", "remove every rendition of a master from the caches"),
    "warm": ("edge.cli.caches", "pre-render what the rules declare for some masters"),
    "rules": ("edge.cli.rules", "validate or export breakpoint rules"),
    "srcset": ("edge.cli.rules", "print responsive image markup for a rule and a master"),
    "preload": ("edge.cli.rules", "print the preload hint of an LCP rule for a master"),
    "sitemap": ("edge.cli.sitemaps", "build Google image sitemaps"),
    "models": ("edge.cli.models", "list or add super-resolution models"),
    "deploy": ("edge.cli.deploy", "print configs for what runs beside the origin"),
    "masters": ("edge.cli.masters", "check the masters folder"),
    "provenance": ("edge.cli.provenance", "print what an image says about where it came from"),
}
ALIASES = {"version": "hash"}


def summary(name: str) -> str:
    return COMMANDS[name][1]


def module_of(name: str) -> str | None:
    """The module that registers `name` (a command or an alias), or None for no command."""
    found = COMMANDS.get(ALIASES.get(name, name))
    return found[0] if found else None
