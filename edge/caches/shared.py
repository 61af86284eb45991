"""What worker processes share besides the disk tier: one render per key across processes, and
purges that reach every process's memory tier.

Both live in a folder of the disk cache (`.shared/`), which every worker of one server uses.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

STRIPES = 256  # lock files: keys share them by hash, so a rare wait for an unrelated key is the cost


class RenderLocks:
    """One render per key across processes: a worker takes the lock of the key's stripe before it
    renders, and a worker that waits looks in the shared tiers again once it gets the lock."""

    def __init__(self, folder: Path, timeout_s: float):
        self.folder = folder / "locks"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.timeout_s = timeout_s  # past this, render anyway: a stuck worker must not stop the rest

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[bool]:
        """Yields True when the lock had to be waited for (another process was rendering)."""
        stripe = int(hashlib.blake2b(key.encode(), digest_size=2).hexdigest(), 16) % STRIPES
        fd = os.open(self.folder / f"{stripe:03d}", os.O_RDWR | os.O_CREAT, 0o600)
        waited, deadline, pause = False, time.monotonic() + self.timeout_s, 0.005
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    held = True
                    break
                except BlockingIOError:
                    waited = True
                    if time.monotonic() > deadline:
                        held = False
                        break
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, 0.05)
            yield waited
        finally:
            if held:
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


class PurgeLog:
    """Purges announced to every worker: the one that handles a purge appends the master path; each
    worker follows the file and applies new lines to what only it holds (its memory tier)."""

    def __init__(self, folder: Path, apply: Callable[[str], Awaitable[None]], every_s: float = 0.25):
        self.path = folder / "purges.log"
        folder.mkdir(parents=True, exist_ok=True)
        self.path.touch()
        self.apply = apply
        self.every_s = every_s
        self._offset = self.path.stat().st_size  # purges before this process started are done

    def announce(self, master_path: str) -> None:
        with open(self.path, "a") as f:  # O_APPEND: whole lines, whichever process writes
            f.write(master_path.replace("\n", " ") + "\n")

    async def follow(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            await self.catch_up()

    async def catch_up(self) -> None:
        size = self.path.stat().st_size
        if size <= self._offset:
            return
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            data = f.read()
        complete, newline, _partial = data.rpartition(b"\n")  # a line still being written waits
        self._offset += len(complete) + len(newline)
        for line in complete.decode("utf-8", "replace").split("\n"):
            if line:
                await self.apply(line)
