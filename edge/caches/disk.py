"""The disk tier: content-addressed files, total size bounded, least recently used evicted first.

Entries are written to a temporary name and renamed into place, and carry a checksum of the body
(edge.caches.entry), so a crash mid-write leaves at worst a stray temp file (removed at start),
never a partial entry that could be served. Reads touch the file's mtime: recency is on disk.

`DiskTier` is one process's: it keeps the sizes in memory and evicts as it writes. With several
worker processes on one directory, `SharedDiskTier` reads and writes the same way, and the total
is kept by whichever worker holds the janitor lock, sweeping the directory every half minute.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import logging
import os
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path

from edge.caches.entry import decode_entry, encode_entry
from origin.core.memo import Memo
from origin.core.rendition import Rendition

log = logging.getLogger(__name__)


def entry_path(root: Path, key: str) -> Path:
    return root / key[:2] / key


WRITE_ERROR_SHOWN_S = 60.0  # a failed write is reported by /readyz this long (a success clears it)
LOW_SPACE_BYTES = 64 * 1024 * 1024  # less free than this on the cache's filesystem: reported

# How stale a file's mtime may be before a read touches it (recency for eviction): a touch per
# minute is enough to order entries, and saves a metadata write on every hit.
TOUCH_AFTER_S = 60.0
_NOWAIT = getattr(os, "RWF_NOWAIT", None)


# Files this process has decoded and checksummed, by identity (device, inode, size, mtime), with
# where the body starts: a file is never rewritten in place (entries are renamed into place: a
# new inode), so a repeat hit skips parsing and hashing; a touch changes the mtime and costs one
# more check a minute.
_VERIFIED: Memo[tuple[int, int, int, int], tuple[Rendition, int]] = Memo(65536)


class WouldBlock(Exception):
    """The entry is not all in the page cache: reading it now would wait for the disk."""


def entry_file(root: str, key: str) -> str:
    """entry_path as a string, for the hit path (a Path costs a hit more than its syscalls)."""
    return f"{root}/{key[:2]}/{key}"


def read_entry(path: str | Path, nowait: bool = False) -> tuple[Rendition | None, bool]:
    """(the rendition, whether a file was there). A damaged entry is removed, to be rendered again.
    `nowait`: read only what the page cache holds (preadv2 RWF_NOWAIT), else raise WouldBlock, so
    the event loop can read hot entries itself (a thread hop costs a hit several times the read)."""
    if nowait and _NOWAIT is None:
        raise WouldBlock()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None, False  # never stored, evicted, or removed by a purge (any process) or by hand
    try:
        st = os.fstat(fd)
        raw = _read_all(fd, st.st_size, nowait)
        if st.st_mtime < time.time() - TOUCH_AFTER_S:
            _touch(fd)
    except OSError as e:
        # EAGAIN: not all in the page cache; EOPNOTSUPP/EINVAL: this filesystem cannot tell.
        if nowait and (isinstance(e, BlockingIOError) or e.errno in (errno.EOPNOTSUPP, errno.EINVAL)):
            raise WouldBlock() from None
        return None, False
    finally:
        os.close(fd)
    identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    known = _VERIFIED.get(identity)
    if known is not None and len(raw) == st.st_size:
        template, start = known
        return replace(template, body=bytes(memoryview(raw)[start:])), True
    rendition = decode_entry(bytes(raw))
    if rendition is None:
        Path(path).unlink(missing_ok=True)
        return None, True
    _VERIFIED[identity] = (replace(rendition, body=b""), len(raw) - len(rendition.body))
    return rendition, True


def _touch(fd: int) -> None:
    try:
        os.utime(fd)  # recency survives restarts and is seen by every process
    except OSError:
        pass  # a read-only cache still serves; it just cannot order its entries


def _read_all(fd: int, size: int, nowait: bool) -> bytes | bytearray:
    if not nowait:
        return os.read(fd, size + 1)  # + 1: a file that grew meanwhile reads as damaged, not cut
    buffer = bytearray(size)
    if os.preadv(fd, [buffer], 0, _NOWAIT) != size:  # type: ignore[arg-type]
        raise WouldBlock()  # partly cached: the rest would wait
    return buffer


def write_entry(path: Path, rendition: Rendition) -> int:
    """Write atomically (readers see the old entry or the whole new one); returns the bytes written."""
    path.parent.mkdir(exist_ok=True)
    data = encode_entry(rendition)
    tmp = path.parent / f".tmp-{uuid.uuid4().hex}"
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return len(data)


def purge_files(root: Path, prefix: str) -> int:
    """Remove every entry whose key starts with `prefix` (keys of one master share a subfolder)."""
    folder = root / prefix[:2]
    removed = 0
    try:
        names = [entry.name for entry in os.scandir(folder) if entry.name.startswith(prefix)]
    except OSError:
        return 0
    for name in names:
        try:
            (folder / name).unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed


class _Files:
    """The async face both disk tiers share; the sync parts run in threads."""

    name = "edge-disk"
    root: Path

    def _get_sync(self, key: str, nowait: bool = False) -> Rendition | None:
        raise NotImplementedError

    def _put_sync(self, key: str, rendition: Rendition) -> None:
        raise NotImplementedError

    def _purge_sync(self, prefix: str) -> int:
        raise NotImplementedError

    async def get(self, key: str) -> Rendition | None:
        try:
            return self._get_sync(key, nowait=True)  # in the page cache: read here, no thread hop
        except WouldBlock:
            return await asyncio.to_thread(self._get_sync, key)

    _write_error: tuple[float, str] | None = None  # the last failed write: when, and why

    async def put(self, key: str, rendition: Rendition) -> bool:
        try:
            await asyncio.to_thread(self._put_sync, key, rendition)
        except OSError as e:
            # A full or failing disk costs the cache entry, not the response: the rendition is made.
            log.warning("disk cache: could not store %s: %s", key, e)
            self._write_error = (time.monotonic(), e.strerror or str(e))
            return False
        self._write_error = None
        return True

    async def purge(self, prefix: str) -> int:
        return await asyncio.to_thread(self._purge_sync, prefix)

    async def ready(self) -> str | None:
        return None  # whatever the disk does, this process serves (hits it can read, misses rendered)

    async def health(self) -> str | None:
        if not os.access(self.root, os.W_OK | os.X_OK):
            return f"disk cache {self.root} is not writable: serving without storing"
        if self._write_error is not None and time.monotonic() - self._write_error[0] < WRITE_ERROR_SHOWN_S:
            return f"disk cache {self.root} could not store the last rendition: {self._write_error[1]}"
        try:
            st = os.statvfs(self.root)
        except OSError as e:
            return f"disk cache {self.root}: {e.strerror}"
        if st.f_bavail * st.f_frsize < LOW_SPACE_BYTES:
            return f"disk cache {self.root} is nearly full ({st.f_bavail * st.f_frsize >> 20} MB free)"
        return None


class DiskTier(_Files):
    """Files at root/ab/abcdef...; total size bounded, least recently used evicted first."""

    def __init__(self, root: str | Path, max_bytes: int):
        self.root = Path(root)
        self._root = str(self.root)
        self.max_bytes = max_bytes
        self._sizes: OrderedDict[str, int] = OrderedDict()  # key -> file size, oldest first
        self._total = 0
        self._lock = threading.Lock()
        self.root.mkdir(parents=True, exist_ok=True)
        self._scan()

    def _path(self, key: str) -> Path:
        return entry_path(self.root, key)

    def _scan(self) -> None:
        """Rebuild the index after a restart; oldest access first. Stray temp files are removed."""
        found = []
        for sub in self.root.iterdir():
            if not sub.is_dir():
                continue
            for f in sub.iterdir():
                try:
                    if f.name.startswith(".tmp-"):
                        f.unlink(missing_ok=True)  # a crash's leftover
                        continue
                    st = f.stat()
                except OSError as e:  # a read-only cache keeps its strays; a vanished file is no entry
                    log.warning("disk cache: %s: %s", f, e.strerror)
                    continue
                found.append((st.st_mtime_ns, f.name, st.st_size))
        for _, key, size in sorted(found):
            self._sizes[key] = size
            self._total += size
        self._evict()

    def _get_sync(self, key: str, nowait: bool = False) -> Rendition | None:
        rendition, _present = read_entry(entry_file(self._root, key), nowait)
        with self._lock:
            if rendition is None:
                self._forget(key)
            elif key in self._sizes:
                self._sizes.move_to_end(key)
        return rendition

    def _put_sync(self, key: str, rendition: Rendition) -> None:
        size = write_entry(self._path(key), rendition)
        with self._lock:
            self._forget(key)
            self._sizes[key] = size
            self._total += size
            self._evict()

    def _forget(self, key: str) -> None:
        size = self._sizes.pop(key, None)
        if size is not None:
            self._total -= size

    def _evict(self) -> None:
        while self._total > self.max_bytes and self._sizes:
            key, size = self._sizes.popitem(last=False)
            self._total -= size
            self._path(key).unlink(missing_ok=True)

    def _purge_sync(self, prefix: str) -> int:
        with self._lock:
            doomed = [key for key in self._sizes if key.startswith(prefix)]
            for key in doomed:
                self._forget(key)
        for key in doomed:
            self._path(key).unlink(missing_ok=True)
        return len(doomed)

    async def close(self) -> None:
        pass

    @property
    def bytes_used(self) -> int:
        return self._total


class SharedDiskTier(_Files):
    """The disk tier of one of several worker processes sharing `root`.

    Reads and writes are DiskTier's. No process knows the total alone, so one janitor keeps it:
    every worker tries the janitor lock (root/.janitor.lock) each `sweep_s`; the one that holds it
    (the kernel releases it if that worker dies) sweeps the directory, removing temp files older
    than a minute (a crash's leftovers) and the least recently read or written entries past
    `max_bytes`. Between sweeps the directory may pass the budget by what was written meanwhile.
    """

    def __init__(self, root: str | Path, max_bytes: int, sweep_s: float = 30.0):
        self.root = Path(root)
        self._root = str(self.root)
        self.max_bytes = max_bytes
        self.sweep_s = sweep_s
        self.root.mkdir(parents=True, exist_ok=True)
        self._total = 0
        self._lock_file = open(self.root / ".janitor.lock", "a+")  # held for the process's life
        self._leader = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._janitor, name="disk-janitor", daemon=True)
        self._thread.start()

    def _get_sync(self, key: str, nowait: bool = False) -> Rendition | None:
        return read_entry(entry_file(self._root, key), nowait)[0]

    def _put_sync(self, key: str, rendition: Rendition) -> None:
        write_entry(entry_path(self.root, key), rendition)

    def _purge_sync(self, prefix: str) -> int:
        return purge_files(self.root, prefix)

    def _janitor(self) -> None:
        while True:
            if not self._leader:
                try:
                    fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    self._leader = True
                except OSError:
                    pass  # another worker sweeps
            if self._leader:
                try:
                    self.sweep()
                except OSError as e:
                    log.warning("disk cache janitor: %s", e)
            if self._stop.wait(self.sweep_s):
                return

    def sweep(self) -> None:
        """Bring the directory within `max_bytes`, least recently used first (mtime: reads touch it)."""
        entries, total, now = [], 0, time.time()
        for sub in os.scandir(self.root):
            if not sub.is_dir(follow_symlinks=False):
                continue
            for f in os.scandir(sub.path):
                try:
                    st = f.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if f.name.startswith(".tmp-"):
                    if now - st.st_mtime > 60:
                        Path(f.path).unlink(missing_ok=True)
                    continue
                entries.append((st.st_mtime_ns, st.st_size, f.path))
                total += st.st_size
        entries.sort()
        for _, size, path in entries:
            if total <= self.max_bytes:
                break
            Path(path).unlink(missing_ok=True)
            total -= size
        self._total = total

    async def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._lock_file.close()

    @property
    def bytes_used(self) -> int:
        """As of the last sweep by this process (0 unless it is the janitor)."""
        return self._total
