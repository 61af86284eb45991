"""Renders run off the event loop, in a bounded pool with a bounded queue and a time budget.

libvips releases the GIL while it works, so threads give real parallelism. Admission counts
renders that are queued or running, and the memory each is expected to need; past either limit
a request gets 503 + Retry-After at once instead of waiting. A miss is admitted (`admit`) before
its master is read, so a burst of misses on big masters cannot hold all their bytes at once. A
render over its time budget answers 504 and is told to stop (libvips checks the token between
tiles while decoding and resizing; an encode under way runs to its end); its slot is freed only
when the thread has really stopped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from origin.core.concurrency import CancelToken, run_in_background
from origin.core.errors import OverBudget, Problem

T = TypeVar("T")


class Ticket:
    """One admitted render: its place in the queue and the bytes it is expected to need, given
    back once (when its thread is done, or when it never got to run)."""

    def __init__(self, give_back: Callable[[int], None], cost: int):
        self._give_back, self.cost, self.released = give_back, cost, False
        self.handed = False  # to a running render, which gives it back when its thread is done

    def release(self) -> None:
        if not self.released:
            self.released = True
            self._give_back(self.cost)


class RenderPool:
    def __init__(
        self,
        workers: int,
        queue_limit: int,
        time_budget_s: float,
        retry_after_s: int = 2,
        memory_budget: int = 0,  # bytes admitted renders may be expected to need at once; 0: no limit
    ):
        self.workers = workers
        self.queue_limit = queue_limit
        self.time_budget_s = time_budget_s
        self.retry_after_s = retry_after_s
        self.memory_budget = memory_budget
        self._executor = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="render", initializer=run_in_background
        )
        self._pending = 0  # admitted (read, queued or running), counted until the thread is really done
        self._bytes = 0  # what those are expected to need
        self.rejected = 0

    @property
    def pending(self) -> int:
        return self._pending

    def admit(self, cost: int = 0) -> Ticket:
        """A place for one render expected to need `cost` bytes, or a 503 when the queue or the
        memory budget is full (one render is always let in, however big)."""
        full = self._pending >= self.workers + self.queue_limit
        if full or (self.memory_budget and self._pending and self._bytes + cost > self.memory_budget):
            self.rejected += 1
            what = f"{self._pending} renders waiting or running" if full else "renders in flight need the memory"
            raise Problem(
                503,
                f"render queue is full ({what}); retry shortly",
                headers={"Retry-After": str(self.retry_after_s)},
            )
        self._pending += 1
        self._bytes += cost
        return Ticket(self._give_back, cost)

    def _give_back(self, cost: int) -> None:
        self._pending -= 1
        self._bytes -= cost

    async def run(self, fn: Callable[[CancelToken], T], ticket: Ticket | None = None) -> T:
        """Run `fn` in the pool within the time budget, on `ticket` (admitted now without one)."""
        ticket = ticket or self.admit()
        token = CancelToken()
        began: list[float] = []  # when the worker thread started the render itself

        def call(token: CancelToken) -> T:
            began.append(time.monotonic())
            return fn(token)

        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, call, token)
        ticket.handed = True
        future.add_done_callback(lambda _: ticket.release())
        future.add_done_callback(self._done)
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.time_budget_s)
        except TimeoutError:
            token.cancel()
            detail = f"render took longer than its budget of {self.time_budget_s:g} s"
            # Its own cost only when it ran for most of the budget: one that waited in the queue
            # for most of it says more about the load than about the rendition.
            if not began or time.monotonic() - began[0] < self.time_budget_s / 2:
                raise Problem(504, detail + " (most of it waiting for a worker)") from None
            raise OverBudget(504, detail) from None

    def _done(self, future: asyncio.Future[T]) -> None:
        if not future.cancelled():
            future.exception()  # mark it seen: a timed-out render's error is expected, not news

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
