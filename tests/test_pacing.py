"""The per-channel rate limit, on a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from followupd.channels.email.pacing import Pacer


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_burst_is_spread_evenly() -> None:
    fake = FakeTime()
    pacer = Pacer(30, clock=fake.clock, sleep=fake.sleep)  # one every 2 seconds

    async def burst() -> None:
        for _ in range(4):
            await pacer.wait()

    asyncio.run(burst())
    assert fake.slept == [2.0, 2.0, 2.0]
    assert fake.now == 106.0


def test_no_wait_when_messages_are_already_far_apart() -> None:
    fake = FakeTime()
    pacer = Pacer(60, clock=fake.clock, sleep=fake.sleep)

    async def spaced() -> None:
        await pacer.wait()
        fake.now += 5
        await pacer.wait()

    asyncio.run(spaced())
    assert fake.slept == []


def test_a_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Pacer(0)


def test_connections_sharing_a_pacer_each_get_a_slot_of_their_own() -> None:
    fake = FakeTime()
    went: list[float] = []

    async def sleep(seconds: float) -> None:  # the others run meanwhile, as they would
        until = fake.now + seconds
        await asyncio.sleep(0)
        fake.now = max(fake.now, until)

    pacer = Pacer(60, clock=fake.clock, sleep=sleep)  # one a second

    async def connection() -> None:
        await pacer.wait()
        went.append(fake.now)

    async def connections() -> None:
        await asyncio.gather(*(connection() for _ in range(3)))

    asyncio.run(connections())
    assert sorted(went) == [100.0, 101.0, 102.0], "three messages at once: now, +1 s, +2 s"
