"""Breakpoint rules (YAML) and the responsive markup they produce.

    from rules.loader import load_rules
    from rules.markup import build_markup
    ruleset = load_rules("rules/examples")            # RulesInvalid lists every error, with file:line
    rule = ruleset.rule_for("hero", "rocket.jpg")     # Problem 404 when unknown or not applicable
    markup = build_markup(rule, "rocket.jpg", record.header, record.short_version, sign, capacity)
    markup.img_html(), markup.picture_html(), markup.preload_html(), markup.link_header(), markup.to_json()

`lengths` and `globs` parse CSS lengths and master globs, `model` holds the frozen values,
`loader` reads and validates YAML, `srcset` plans candidate widths and `sizes` (pure, with the
server's `Capacity`), `closed_world` checks requests against what the rules declare, `markup`
signs (with a `sign` callable passed in) and renders, `preview` draws the preview page. Signing,
master lookup, HTTP and the CLI are edge's. The format is described by `schema.json`;
`examples/site.yaml` uses the demo masters. Import from the modules themselves.
"""
