"""Masters in a local directory (the default): no request can reach outside its root."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterator
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
        try:
            if real is None:
                raise FileNotFoundError(info.path)
            return await asyncio.to_thread(_read_regular, real)
        except OSError:
            raise retry_soon(f"master {info.path!r} changed during the request; retry") from None

    async def ready(self) -> str | None:
        if not self.root.is_dir() or not os.access(self.root, os.R_OK | os.X_OK):
            return f"masters directory {self.root} is not readable"
        return None

    async def health(self) -> str | None:
        return None  # nothing shared: ready() says it all

    async def close(self) -> None:
        pass  # nothing held open

    def list(self) -> list[str]:
        """Every master path under the root (for CLI commands that mean all of them)."""
        return list(self.paths())

    def paths(self) -> Iterator[str]:
        """Master paths under the root in sorted order, found as they are needed (a caller that
        wants a few does not walk a huge tree). Names a URL cannot spell (not UTF-8) and hidden
        ones are left out; what each file is, is not looked at here."""
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                rel = Path(dirpath, name).relative_to(self.root).as_posix()
                if is_safe_relative(rel):
                    yield rel


def _read_regular(path: Path) -> bytes:
    """The bytes of a regular file. Opened without blocking and checked after opening, so a FIFO
    or device put in a master's place never hangs a worker (OSError, like a vanished file)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read()
    finally:
        os.close(fd)
