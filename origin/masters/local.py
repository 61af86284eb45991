"""Masters in a local directory (the default): no request can reach outside its root."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from origin.core.errors import retry_soon
from origin.core.paths import is_safe_relative
from origin.masters.store import MasterInfo


class LocalMasterStore:
    def __init__(self, root: str | Path):
        self.root = Path(root).resolve(strict=True)

    def _resolve(self, path: str) -> Path | None:
        if not is_safe_relative(path):
            return None
        try:
            real = (self.root / path).resolve(strict=True)
        except (OSError, RuntimeError):  # missing, or a symlink loop
            return None
        # Symlinks are followed, but only to targets inside the root.
        if not real.is_relative_to(self.root) or not real.is_file():
            return None
        return real

    async def stat(self, path: str) -> MasterInfo | None:
        real = self._resolve(path)
        if real is None:
            return None
        try:
            st = real.stat()
        except OSError:  # removed since it was resolved: as missing as if it had never been
            return None
        return MasterInfo(path, st.st_size, f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}", st.st_mtime)

    async def read(self, info: MasterInfo) -> bytes:
        """The master's bytes; a 503 with Retry-After when it was removed or replaced since its
        stat (a master re-created during traffic is there again a moment later)."""
        real = self._resolve(info.path)
        if real is None:
            raise retry_soon(f"master {info.path!r} changed during the request; retry")
        try:
            return await asyncio.to_thread(real.read_bytes)
        except OSError:
            raise retry_soon(f"master {info.path!r} changed during the request; retry") from None

    async def ready(self) -> str | None:
        if not self.root.is_dir() or not os.access(self.root, os.R_OK | os.X_OK):
            return f"masters directory {self.root} is not readable"
        return None

    async def close(self) -> None:
        pass  # nothing held open

    def list(self) -> list[str]:
        """Every master path under the root (for the CLI and the demo page)."""
        out = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                rel = Path(dirpath, name).relative_to(self.root).as_posix()
                if is_safe_relative(rel):
                    out.append(rel)
        return out
