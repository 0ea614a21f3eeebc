"""Outcomes recorded together: each record takes all that came since the last one began.

A message's outcome is recorded as soon as the record under way is done, in
one statement with every other outcome that came meanwhile: at a few hundred
messages a second, a handful at a time; at a few a minute, one by one, at
once. So a statement carries many outcomes when they come fast, yet a crash
loses the record of only those that came during the record under way (SMTP
then sends them again, with their Message-IDs).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class GroupCommit(Generic[T]):
    """Items handed to `record` in batches, in a thread (off the event loop), one at a time."""

    def __init__(self, record: Callable[[list[T]], None]) -> None:
        self.record = record
        self.waiting: list[T] = []
        self.task: asyncio.Task[None] | None = None

    def add(self, item: T) -> None:
        """Record `item` soon; raises what a record before it raised (nothing more should go)."""
        if self.task is not None and self.task.done():
            task, self.task = self.task, None
            task.result()
        self.waiting.append(item)
        if self.task is None:
            self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while self.waiting:
            items, self.waiting = self.waiting, []
            await asyncio.to_thread(self.record, items)

    async def flush(self) -> None:
        """Return once every item added is recorded; raises what a record raised."""
        while self.task is not None:
            task = self.task
            try:
                await task
            finally:
                if self.task is task:
                    self.task = None
