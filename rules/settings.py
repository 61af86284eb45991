"""[rules] in the configuration."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

BUNDLED_RULES = Path(__file__).parent / "examples"


@dataclass(frozen=True)
class RulesSettings:
    dir: str = ""  # directory of *.yaml breakpoint rules; empty: the bundled examples
    # Closed world: only renditions some rule declares are rendered, so a leaked key cannot be
    # used to ask for arbitrary sizes.
    closed_world: bool = False
    preview: bool = False  # the /preview page for frontend developers

    @property
    def path(self) -> Path:
        return Path(self.dir) if self.dir else BUNDLED_RULES
