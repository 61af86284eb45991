"""Renders run off the event loop, in a bounded pool with a bounded queue and a time budget.

libvips releases the GIL while it works, so threads give real parallelism. Admission counts
renders that are queued or running; past the limit a request gets 503 + Retry-After at once
instead of waiting. A render over its time budget answers 504 and is told to stop (libvips
checks the token between tiles while decoding and resizing; an encode under way runs to its
end); its slot is freed only when the thread has really stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from origin.core.concurrency import CancelToken
from origin.core.errors import Problem

T = TypeVar("T")


class RenderPool:
    def __init__(self, workers: int, queue_limit: int, time_budget_s: float, retry_after_s: int = 2):
        self.workers = workers
        self.queue_limit = queue_limit
        self.time_budget_s = time_budget_s
        self.retry_after_s = retry_after_s
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="render")
        self._pending = 0  # queued + running, counted until the thread is really done
        self.rejected = 0

    @property
    def pending(self) -> int:
        return self._pending

    async def run(self, fn: Callable[[CancelToken], T]) -> T:
        if self._pending >= self.workers + self.queue_limit:
            self.rejected += 1
            raise Problem(
                503,
                f"render queue is full ({self._pending} renders waiting or running); retry shortly",
                headers={"Retry-After": str(self.retry_after_s)},
            )
        token = CancelToken()
        self._pending += 1
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, fn, token)
        future.add_done_callback(self._done)
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.time_budget_s)
        except TimeoutError:
            token.cancel()
            raise Problem(504, f"render took longer than its budget of {self.time_budget_s:g} s") from None

    def _done(self, future: asyncio.Future[T]) -> None:
        self._pending -= 1
        if not future.cancelled():
            future.exception()  # mark it seen: a timed-out render's error is expected, not news

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
