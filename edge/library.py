"""The project as a library: responsive image markup for a page server in the same Python process.

    from edge.library import EdgeImages
    images = EdgeImages.from_config("edge.toml", base_url="https://img.example.com")
    markup = images.markup("hero", "cat.jpg", alt="A cat")   # rules.markup.Markup
    markup.img_html(), markup.picture_html(), markup.preload_html(), markup.link_header()

This is the public Python API the template integrations (edge.integrations.jinja,
edge.integrations.django_tags) are built on, and what `edge srcset` and `edge preload` print
through: the same rules, signing keys, master store and limits as the server's configuration,
so the markup is byte for byte the CLI's and the `/srcset` endpoint's. Masters are looked up
through one long-lived index (each master is read and hashed once per version; a changed file
shows after `server.master_stat_ttl_s`), on a private event-loop thread, so the calls are plain
synchronous functions a template can make. Placeholders are rendered in this process, once per
master version and rule.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from edge.config import Config, load_config
from edge.placeholders import source_options
from edge.services import capacity_of, load_rule_set, master_store
from edge.signing import Signer
from origin.core.master import MasterRecord
from origin.core.memo import Memo
from origin.imaging.placeholders import Placeholder, placeholder_of
from origin.masters.index import MasterIndex
from origin.pipeline import render
from origin.plan import plan_rendition
from rules.markup import ALT_PLACEHOLDER, Markup, build_markup
from rules.model import Rule, RuleSet

T = TypeVar("T")


class EdgeImages:
    """Markup for a rule and a master, signed with the configuration's first key."""

    def __init__(self, config: Config, *, base_url: str = "", rules: RuleSet | None = None):
        self.config = config
        self.rules = rules if rules is not None else load_rule_set(config)  # ConfigError when invalid
        self.capacity = capacity_of(config)
        self.base_url = base_url
        self._sign = Signer(config.signing_keys()).url_signer(base_url)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="edge-images", daemon=True)
        self._thread.start()
        self._store = master_store(config)
        self._index = MasterIndex(self._store, config.limits, stat_ttl_s=config.server.master_stat_ttl_s)
        self._placeholders: Memo[tuple[str, str], Placeholder] = Memo(4096)

    @classmethod
    def from_config(cls, path: str | Path | None = None, *, base_url: str = "", **overrides: Any) -> EdgeImages:
        """From a TOML file (or EDGE_CONFIG), the EDGE_* environment and `section.name` overrides,
        exactly as `edge serve` loads it."""
        return cls(load_config(path, **overrides), base_url=base_url)

    def master(self, path: str) -> MasterRecord:
        """The master's current record; a Problem (404 unknown, 415 undecodable...) otherwise."""
        return self._run(self._index.lookup(path))

    def markup(self, rule: str, master: str, *, alt: str = ALT_PLACEHOLDER, placeholder: bool = False) -> Markup:
        """All markup of `rule` for `master`; `placeholder`: paint it behind the <img> (a style
        attribute). A Problem (404) for an unknown rule, a master the rule does not cover or an
        unknown master: checked in that order, like the server."""
        found = self.rules.rule_for(rule, master)
        record = self.master(master)
        style = self.placeholder(found, record).css() if placeholder else None
        return build_markup(
            found, master, record.header, record.short_version, self._sign, self.capacity, alt=alt, style=style
        )

    def placeholder(self, rule: Rule, record: MasterRecord) -> Placeholder:
        """The rule's placeholder for this master version, rendered here once."""
        key = (rule.name, record.version)
        made = self._placeholders.get(key)
        if made is None:
            opts = source_options(rule.framing, record.header, self.capacity, rule.settings)
            plan = plan_rendition(opts, record.header, "png", self.config.limits, self.config.formats)
            data = self._run(self._store.read(record.info))
            rendition, _ = render(data, plan, self.config.encode)
            made = self._placeholders[key] = placeholder_of(rendition.body)
        return made

    def close(self) -> None:
        self._run(self._store.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self) -> EdgeImages:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()
