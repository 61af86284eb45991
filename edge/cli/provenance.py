"""`edge provenance FILE|URL`: what a rendition says about itself, on one screen.

Its format and size, its IPTC Digital Source Type, its XMP history (who edited it, with what),
the rights fields every rendition keeps, and its C2PA Content Credentials: whether they validate
(`--trust PEM` names the certificates to trust), who signed, the actions and the ingredients.
`--json` for the same as one JSON object. A URL is fetched with a browser's Accept (AVIF, WebP),
as a CDN would see it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import httpx

from edge.cli.commands import summary
from edge.config import Config, ConfigError
from origin.imaging.credentials import MASTER_MIME, read_credentials
from origin.imaging.metadata import provenance_in

ACCEPT = "image/avif,image/webp,image/*,*/*;q=0.8"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "provenance",
        help=summary("provenance"),
        description="Print an image's format, size, IPTC Digital Source Type, XMP history and kept rights.",
    )
    parser.add_argument("source", metavar="FILE|URL", help="an image file, or an http(s) URL to fetch")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--trust", metavar="PEM", help="trust anchors for the C2PA signature (default: validate it, trust no signer)"
    )
    parser.set_defaults(func=cmd_provenance)


def read(source: str) -> bytes:
    if source.startswith(("http://", "https://")):
        try:
            response = httpx.get(source, headers={"Accept": ACCEPT}, timeout=30, follow_redirects=True)
        except httpx.HTTPError as e:
            raise ConfigError(f"{source}: not reachable ({type(e).__name__})") from None
        if response.status_code != 200:
            raise ConfigError(f"{source}: {response.status_code} {response.text[:200]}")
        return response.content
    try:
        return Path(source).read_bytes()
    except OSError as e:
        raise ConfigError(f"{source}: {e.strerror}") from None


def cmd_provenance(args: argparse.Namespace, _config: Config) -> int:
    data = read(args.source)
    try:
        found = provenance_in(data)
    except ValueError as e:
        raise ConfigError(f"{args.source}: {e}") from None
    anchors = read(args.trust).decode() if args.trust else ""
    credentials = read_credentials(data, MASTER_MIME.get(str(found["format"]), "image/jpeg"), anchors)
    found["c2pa"] = credentials
    if args.json:
        print(json.dumps(found, ensure_ascii=False, indent=2))
        return 0
    print(f"{args.source}: {found['format']} {found['width']}x{found['height']}, {found['bytes']:,} bytes")
    print(f"  source type: {found['source_type'] or '(none declared)'}")
    history = found["history"] or []
    for event in history:  # type: ignore[attr-defined]
        extra = f" ({event['parameters']})" if event.get("parameters") else ""
        print(f"  history:     {event.get('action', '?')} by {event.get('softwareAgent', '?')}{extra}")
    if not history:
        print("  history:     (none)")
    rights = found["rights"] or {}
    for name, value in rights.items():  # type: ignore[attr-defined]
        print(f"  {name}: {value}")
    if not rights:
        print("  rights:      (none kept)")
    if not credentials:
        print("  c2pa:        none")
        return 0
    failures = f" ({', '.join(credentials['failures'])})" if credentials["failures"] else ""
    print(f"  c2pa:        {credentials['state']}{failures}")
    if "actions" in credentials:
        print(f"  signed by:   {credentials['signer'] or '?'} with {', '.join(credentials['generator'])}")
        print(f"  actions:     {', '.join(credentials['actions'])}")
        for ingredient in credentials["ingredients"]:
            has = "with its manifest" if ingredient["manifest"] else "without a manifest"
            print(f"  ingredient:  {ingredient['title']} ({ingredient['relationship']}, {has})")
    return 0
