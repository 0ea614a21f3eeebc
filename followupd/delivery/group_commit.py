"""Outcomes recorded together: a record takes all that came since the last one.

A record starts once `at_least` outcomes wait, or `within` seconds after the
first of them came, whichever is first; what comes during a record waits
for the next. At hundreds of messages a second, a statement then carries
`at_least` outcomes or more (a record costs about a millisecond, whatever
it carries); at a few messages a minute, each is recorded on its own, within
`within`. A crash loses the record of only what waited (SMTP then sends it
again, with its Message-ID).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class GroupCommit(Generic[T]):
    """Items handed to `record` in batches, in a thread (off the event loop), one at a time."""

    def __init__(
        self, record: Callable[[list[T]], None], at_least: int = 1, within: float = 0.01
    ) -> None:
        self.record = record
        self.at_least, self.within = at_least, within
        self.waiting: list[T] = []
        self.task: asyncio.Task[None] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.added = self.recorded = 0
        self.wanted = 0  # what a flush waits for: every item added before it, however few

    def add(self, item: T) -> None:
        """Record `item` soon; raises what a record before it raised (nothing more should go)."""
        if self.task is not None and self.task.done():
            self.task.result()
        self.waiting.append(item)
        self.added += 1
        if self.task is not None:
            return  # the record under way looks again when it is done
        if len(self.waiting) >= self.at_least:
            self._start()
        elif self.timer is None:
            self.timer = asyncio.get_running_loop().call_later(self.within, self._start)

    def _start(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.task is None and self.waiting:
            self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while self.waiting:
            items, self.waiting = self.waiting, []
            await asyncio.to_thread(self.record, items)
            self.recorded += len(items)
            if len(self.waiting) < self.at_least and self.recorded >= self.wanted:
                break
        self.task = None
        if self.waiting and self.timer is None:  # too few yet: they wait a moment at most
            self.timer = asyncio.get_running_loop().call_later(self.within, self._start)

    async def flush(self) -> None:
        """Return once every item added before is recorded; raises what a record raised."""
        self.wanted = max(self.wanted, self.added)
        while self.recorded < self.wanted:
            self._start()
            if self.task is None:  # nothing left to record: cannot happen
                return
            await self.task
