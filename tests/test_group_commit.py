"""Outcomes recorded together: what comes during a record goes in the next one."""

from __future__ import annotations

import asyncio
import threading

import pytest

from followupd.delivery.group_commit import GroupCommit


def test_what_comes_during_a_record_goes_in_the_next_one() -> None:
    records: list[list[int]] = []
    recording, go_on = threading.Event(), threading.Event()

    def record(items: list[int]) -> None:
        records.append(items)
        recording.set()
        go_on.wait(timeout=10)

    async def scenario() -> None:
        commit: GroupCommit[int] = GroupCommit(record)
        commit.add(1)
        await asyncio.to_thread(recording.wait, 10)  # the first record is under way
        for item in (2, 3, 4):
            commit.add(item)
        go_on.set()
        await commit.flush()

    asyncio.run(scenario())
    assert records == [[1], [2, 3, 4]]


def test_a_failed_record_stops_what_comes_after_it() -> None:
    def record(items: list[int]) -> None:
        raise RuntimeError("the database went away")

    async def scenario() -> None:
        commit: GroupCommit[int] = GroupCommit(record)
        commit.add(1)
        assert commit.task is not None
        await asyncio.wait([commit.task])  # the record failed
        for item in (2, 3):  # nothing more is sent once the outcomes cannot be recorded
            with pytest.raises(RuntimeError, match="went away"):
                commit.add(item)
        with pytest.raises(RuntimeError, match="went away"):
            await commit.flush()

    asyncio.run(scenario())


def test_a_record_waits_for_enough_outcomes_and_a_flush_takes_the_rest() -> None:
    records: list[list[int]] = []

    async def scenario() -> None:
        commit: GroupCommit[int] = GroupCommit(records.append, at_least=3, within=60)
        commit.add(1)
        commit.add(2)
        assert commit.task is None and records == [], "too few: they wait"
        commit.add(3)
        await commit.flush()
        assert records == [[1, 2, 3]]
        commit.add(4)
        await commit.flush()

    asyncio.run(scenario())
    assert records == [[1, 2, 3], [4]]


def test_a_few_outcomes_are_recorded_within_a_moment() -> None:
    records: list[list[int]] = []
    recorded = threading.Event()

    def record(items: list[int]) -> None:
        records.append(items)
        recorded.set()

    async def scenario() -> None:
        commit: GroupCommit[int] = GroupCommit(record, at_least=10, within=0.01)
        commit.add(1)
        await asyncio.to_thread(recorded.wait, 10)  # no flush: the timer starts it

    asyncio.run(scenario())
    assert records == [[1]]
