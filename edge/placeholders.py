"""Placeholders of a master as a rule frames it (origin.imaging.placeholders), made once.

The image they are computed from is a small PNG rendition of the rule's framing, asked through the
renditions service like any other, so it is cached in every tier; the placeholder strings are
remembered per rendition key, which names the master's version: a new master, new placeholders.
The rendition is never wider than the master (or its crop), so no model is ever run for one.
"""

from __future__ import annotations

import asyncio

from edge.renditions import RenditionService
from origin.core.limits import output_height
from origin.core.master import MasterHeader, MasterRecord
from origin.core.memo import Memo
from origin.core.request import RenditionOptions
from origin.imaging.placeholders import Placeholder, placeholder_of
from rules.model import Framing, Rule, Settings
from rules.srcset import Capacity, output_aspect, width_cap

DEFAULT_SETTINGS = Settings()
WIDTH = 64  # px: enough for the dominant colour and ThumbHash's 100 px box, cheap to render


def source_options(
    framing: Framing, header: MasterHeader, capacity: Capacity, settings: Settings = DEFAULT_SETTINGS
) -> RenditionOptions:
    """The small rendition placeholders are made from: a rule's framing (or the master as it is),
    WIDTH px or the master's own width if less (never enlarged, so never a model run)."""
    width = min(WIDTH, width_cap(framing, header, "never", settings, capacity))
    height = output_height(width, output_aspect(framing, header))
    return framing.rendition(width, height if framing.aspect is not None else None)


class Placeholders:
    def __init__(self, renditions: RenditionService, capacity: Capacity):
        self.renditions = renditions
        self.capacity = capacity
        self._made: Memo[str, Placeholder] = Memo(4096)

    async def get(self, rule: Rule, record: MasterRecord) -> Placeholder:
        return await self._of(source_options(rule.framing, record.header, self.capacity, rule.settings), record)

    async def for_master(self, record: MasterRecord) -> Placeholder:
        """The master's own, uncropped (for /info)."""
        return await self._of(source_options(Framing(), record.header, self.capacity), record)

    async def _of(self, opts: RenditionOptions, record: MasterRecord) -> Placeholder:
        job = self.renditions.job(record, opts, "png")
        made = self._made.get(job.key)
        if made is None:
            body = (await self.renditions.get(job)).rendition.body
            made = await asyncio.to_thread(placeholder_of, body)
            self._made[job.key] = made
        return made
