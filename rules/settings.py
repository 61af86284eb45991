"""[rules] in the configuration."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

BUNDLED_RULES = Path(__file__).parent / "examples"
ACCESS = ("auto", "public", "token")


@dataclass(frozen=True)
class RulesSettings:
    dir: str = ""  # directory of *.yaml breakpoint rules; empty: the bundled examples
    # Closed world: only renditions some rule declares are rendered, so a leaked key cannot be
    # used to ask for arbitrary sizes.
    closed_world: bool = False
    preview: bool = False  # the /preview page for frontend developers
    # Who may call /srcset and /preload, which mint signed URLs: "public", "token" (Authorization:
    # Bearer <markup_token>), or "auto": public under closed world (every declared rendition is
    # public then anyway) and on the development key (the demo), token otherwise.
    markup_access: str = "auto"
    markup_token: str = ""

    def __post_init__(self) -> None:
        if self.markup_access not in ACCESS:
            raise ValueError(f"markup_access must be one of {', '.join(ACCESS)}, got {self.markup_access!r}")
        if self.markup_token and len(self.markup_token) < 16:
            raise ValueError("markup_token must be at least 16 characters")

    @property
    def path(self) -> Path:
        return Path(self.dir) if self.dir else BUNDLED_RULES
