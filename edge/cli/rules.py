"""`edge rules check`, `edge srcset RULE MASTER`, `edge preload RULE MASTER`.

edge rules check [--rules DIR]
edge rules export [--rules DIR]      the public description GET /rules.json serves (rules.public)
edge srcset RULE MASTER [--rules DIR] [--base-url URL] [--format html|picture|json] [--alt TEXT]
edge preload RULE MASTER [--rules DIR] [--base-url URL] [--for img|picture] [--format html|link|json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from edge.cli.commands import summary
from edge.cli.common import add_common, warn_dev_key
from edge.config import Config
from edge.library import EdgeImages
from edge.services import capacity_of, master_store
from origin.core.errors import Problem
from origin.core.master import MasterHeader
from origin.imaging.placeholders import Placeholder
from origin.masters.index import MasterIndex
from origin.masters.local import LocalMasterStore
from rules.keyless import renderable_count
from rules.loader import check_rules
from rules.markup import ALT_PLACEHOLDER, Markup
from rules.model import RuleSet
from rules.public import describe
from rules.settings import BUNDLED_RULES


def register(subparsers: argparse._SubParsersAction) -> None:
    rules = subparsers.add_parser("rules", help=summary("rules"), description="Work with the YAML breakpoint rules.")
    rules_sub = rules.add_subparsers(dest="rules_command", required=True)
    check = rules_sub.add_parser(
        "check",
        help="validate every rules file",
        description="Validate every *.yaml file of the rules directory. Prints each error as "
        "FILE:LINE KEY.PATH: MESSAGE and exits 1 if there is any.",
    )
    add_common(check)
    _rules_flag(check)
    check.set_defaults(func=cmd_check)
    export = rules_sub.add_parser(
        "export",
        help="print the rules' public description (what GET /rules.json serves)",
        description="Print the JSON description of the rules that the JavaScript package builds keyless URLs "
        "and srcsets from: breakpoints, slots, widths, framings, formats, and this server's limits. "
        "Nothing secret.",
    )
    add_common(export)
    _rules_flag(export)
    export.set_defaults(func=cmd_export)

    srcset = subparsers.add_parser(
        "srcset",
        help=summary("srcset"),
        description="Print <img> (html), <picture> (picture) or JSON markup with signed, versioned URLs.",
    )
    _markup_flags(srcset)
    srcset.add_argument("--format", choices=("html", "picture", "json"), default="html", help="default: html")
    srcset.add_argument("--alt", default=ALT_PLACEHOLDER, help="alt text (default: a placeholder to replace)")
    srcset.add_argument(
        "--placeholder", action="store_true", help="paint the placeholder behind the <img> (a style attribute)"
    )
    srcset.set_defaults(func=cmd_srcset)

    preload = subparsers.add_parser(
        "preload",
        help=summary("preload"),
        description="Print the <link rel=preload> (html), the Link header value (link) or both (json) for an "
        "LCP rule; nothing for a rule that is not LCP.",
    )
    _markup_flags(preload)
    preload.add_argument(
        "--for",
        dest="target",
        choices=("img", "picture"),
        default=None,
        help="match the <img> markup (negotiated format) or the <picture> markup (default: <picture> for a "
        "rule with art direction, else <img>)",
    )
    preload.add_argument("--format", choices=("html", "link", "json"), default="html", help="default: html")
    preload.set_defaults(func=cmd_preload)


def _rules_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rules", help=f"directory of *.yaml rule files (default: [rules] dir, else {BUNDLED_RULES})")


def _markup_flags(parser: argparse.ArgumentParser) -> None:
    add_common(parser)
    _rules_flag(parser)
    parser.add_argument("rule", help="rule name")
    parser.add_argument("master", help="master path, relative to the masters directory")
    parser.add_argument("--base-url", default="", help="prefix for every URL, e.g. https://img.example.com")


def _load(args: argparse.Namespace, config: Config) -> tuple[RuleSet | None, str]:
    source = args.rules or str(config.rules_dir)
    ruleset, errors = check_rules(source)
    for error in errors:
        print(error)
    return ruleset, source


def cmd_check(args: argparse.Namespace, config: Config) -> int:
    ruleset, source = _load(args, config)
    if ruleset is None:
        print("edge: rules are invalid", file=sys.stderr)
        return 1
    files = len(ruleset.files)
    print(
        f"{source}: {files} file{'s' * (files != 1)}, {len(ruleset.rules)} rules, "
        f"{len(ruleset.breakpoints)} breakpoints: OK"
    )
    if args.masters:  # with a masters directory: how many renditions each rule declares, which never apply
        masters = LocalMasterStore(config.masters_dir).list()
        headers = _headers(config, [m for m in masters if any(r.matches(m) for r in ruleset.rules)])
        capacity = capacity_of(config)
        for rule in ruleset.rules:
            matched = [h for path, h in headers.items() if rule.matches(path)]
            if not matched:
                print(f"warning: {rule.source} rule {rule.name!r} matches no master in {args.masters}", file=sys.stderr)
                continue
            count = renderable_count(rule, matched, capacity)
            masters_text = f"{len(matched)} master{'s' * (len(matched) != 1)}"
            print(f"rule {rule.name!r}: {count} renditions of {masters_text} (what closed world renders)")
    return 0


def cmd_export(args: argparse.Namespace, config: Config) -> int:
    ruleset, _ = _load(args, config)
    if ruleset is None:
        print("edge: rules are invalid", file=sys.stderr)
        return 1
    print(json.dumps(describe(ruleset, capacity_of(config), keyless=config.rules.closed_world), indent=2))
    return 0


def _headers(config: Config, paths: list[str]) -> dict[str, MasterHeader]:
    """The headers of the masters that can be served (the others are left out, not errors here)."""

    async def read() -> dict[str, MasterHeader]:
        store = master_store(config)
        index = MasterIndex(store, config.limits)
        found = {}
        try:
            for path in paths:
                try:
                    found[path] = (await index.lookup(path)).header
                except Problem:
                    continue
        finally:
            await store.close()
        return found

    return asyncio.run(read())


def _markup(
    args: argparse.Namespace, config: Config, alt: str = ALT_PLACEHOLDER, placeholder: bool = False, paint: bool = False
) -> tuple[Markup, Placeholder | None] | None:
    ruleset, _ = _load(args, config)
    if ruleset is None:
        print("edge: rules are invalid", file=sys.stderr)
        return None
    ruleset.named(args.rule)  # an unknown rule before anything is read
    with EdgeImages(config, base_url=args.base_url, rules=ruleset) as images:
        rule = ruleset.rule_for(args.rule, args.master)
        record = images.master(args.master)
        warn_dev_key(config)
        painted = images.placeholder(rule, record) if placeholder or paint else None
        return images.markup(args.rule, args.master, alt=alt, placeholder=paint), painted


def cmd_srcset(args: argparse.Namespace, config: Config) -> int:
    made = _markup(args, config, args.alt, placeholder=args.format == "json", paint=args.placeholder)
    if made is None:
        return 1
    markup, painted = made
    if args.format == "json":
        doc = markup.to_json()
        if painted is not None:
            doc["placeholder"] = painted.to_json()
        print(json.dumps(doc, indent=2))
    else:
        print({"html": markup.img_html, "picture": markup.picture_html}[args.format]())
    return 0


def cmd_preload(args: argparse.Namespace, config: Config) -> int:
    made = _markup(args, config)
    if made is None:
        return 1
    markup, _ = made
    target = args.target or markup.default_target
    if args.format == "json":
        print(json.dumps(markup.preload_json(target), indent=2))
    elif not markup.lcp:
        print(f"edge: rule {markup.rule!r} is not an LCP rule (lcp: true): nothing to preload", file=sys.stderr)
    else:
        print(markup.preload_html(target) if args.format == "html" else markup.link_header(target))
    return 0
