"""A rate limit per channel: at most N messages a minute, spaced evenly.

Bursts (a Monday 09:00 with a hundred nudges) are spread instead of hitting
the provider's own limits; the connections of a pass share one pacer. The
clock and the sleep are parameters, so the pacing is tested without waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class Pacer:
    def __init__(
        self,
        per_minute: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.interval = 60.0 / per_minute
        self.clock = clock
        self.sleep = sleep
        self.next_slot: float | None = None

    async def wait(self) -> None:
        """Return when the next message may go.

        The slot is taken before sleeping: the connections of a pass that share
        one pacer each get a slot of their own, never the same one.
        """
        now = self.clock()
        slot = now if self.next_slot is None else max(now, self.next_slot)
        self.next_slot = slot + self.interval
        if slot > now:
            await self.sleep(slot - now)
