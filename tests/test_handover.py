"""The handover: a message ends only while fewer than its window are accepted and not recorded."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

import pytest

from followupd.channels.email.message import build_message
from followupd.channels.email.sender import SmtpSender
from followupd.config.sections import Smtp
from followupd.delivery.handover import ClaimsInDoubt, Handover
from tests.smtpserver import smtp_server


def test_a_turn_waits_for_the_record_of_the_message_accepted_before() -> None:
    recording, go_on = threading.Event(), threading.Event()
    recorded: list[int] = []

    def record(items: list[int]) -> int:
        recording.set()
        go_on.wait(timeout=10)
        recorded.extend(items)
        return 0

    async def scenario() -> None:
        handover: Handover[int] = Handover(record)
        first = handover.turn(0)
        await first()
        first.accepted(1)
        await asyncio.to_thread(recording.wait, 10)
        second = asyncio.create_task(handover.turn(0)())
        await asyncio.sleep(0)  # a chance to take the turn, which it must not
        await asyncio.sleep(0)
        assert not second.done(), "the second message waits for the first's record"
        go_on.set()
        await second
        assert recorded == [1]
        await handover.settled()

    asyncio.run(scenario())


def test_a_refused_message_ends_its_turn_and_a_failed_record_stops_the_next() -> None:
    def record(items: list[int]) -> int:
        raise RuntimeError("the database went away")

    async def scenario() -> None:
        handover: Handover[int] = Handover(record)
        refused = handover.turn(0)
        await refused()
        refused.refused()  # a 550: nothing to record, the next may end at once
        accepted = handover.turn(0)
        await accepted()
        accepted.accepted(1)
        with pytest.raises(RuntimeError, match="went away"):
            await handover.turn(0)()  # a message must not end when the one before is unrecorded
        with pytest.raises(RuntimeError, match="went away"):
            await handover.settled()

    asyncio.run(scenario())


def test_the_server_gets_a_message_only_once_its_gate_opens() -> None:
    email = build_message(key="k1", sender="Claire <claire@cabinet.example>",
                          recipient="j@acme.example", reply_to="claire@cabinet.example",
                          subject="Facture F-1", body=".a line with a dot\nthen more\n",
                          sent_at=datetime(2026, 11, 23, 8, tzinfo=UTC))  # fmt: skip
    with smtp_server() as (recorder, port):
        smtp = Smtp(host="127.0.0.1", port=port, security="none", rate_per_minute=100000)

        async def scenario() -> None:
            gate, reached = asyncio.Event(), asyncio.Event()

            async def before_end() -> None:
                reached.set()  # the envelope taken: the text and its end wait
                await gate.wait()

            async with SmtpSender(smtp) as sender:
                sending = asyncio.create_task(sender.send(email, before_end))
                await asyncio.wait_for(reached.wait(), 10)
                assert recorder.messages == [], "nothing accepted before its end"
                gate.set()
                await sending

                async def broken() -> None:
                    raise RuntimeError("its record cannot be made")

                with pytest.raises(RuntimeError):
                    await sender.send(email, broken)

        asyncio.run(scenario())
        assert len(recorder.messages) == 1, "the message whose gate failed never ended"
        (message,) = recorder.messages
        assert message["Message-ID"] == email.message_id
        text = message.get_body(("plain",))
        assert text is not None and text.get_content().startswith(".a line with a dot")


def test_a_claim_found_taken_over_stops_the_messages_checked_before() -> None:
    async def scenario() -> None:
        handover: Handover[int] = Handover(lambda items: items.count(2))  # 2: taken over
        for item in (1, 2):
            turn = handover.turn(0)
            await turn()
            turn.accepted(item)
            await handover.settled()
        assert handover.losses == 1
        with pytest.raises(ClaimsInDoubt):
            await handover.turn(0)()  # checked before the loss: checked again first
        again = handover.turn(handover.losses)
        await again()  # checked since: it may end
        again.refused()

    asyncio.run(scenario())


def test_a_window_lets_that_many_end_before_their_record_made_together() -> None:
    records: list[list[int]] = []

    def record(items: list[int]) -> int:
        records.append(items)
        return 0

    async def scenario() -> None:
        handover: Handover[int] = Handover(record, window=3, within=60)  # no record by time
        for item in (1, 2):
            turn = handover.turn(0)
            await turn()
            turn.accepted(item)
        await asyncio.sleep(0)
        assert records == [], "two of three: not recorded yet"
        third = handover.turn(0)
        await third()  # the window's last place
        fourth = handover.turn(0)
        waiting = asyncio.create_task(fourth())
        await asyncio.sleep(0)
        assert not waiting.done(), "three ended, none recorded: the fourth waits"
        third.accepted(3)
        await waiting  # the three, recorded together, let it end
        assert records == [[1, 2, 3]]
        fourth.accepted(4)
        await handover.settled()
        assert records == [[1, 2, 3], [4]]

    asyncio.run(scenario())


def test_what_was_accepted_is_recorded_soon_while_a_server_holds_the_next_end() -> None:
    recorded = threading.Event()
    records: list[list[int]] = []

    def record(items: list[int]) -> int:
        records.append(items)
        recorded.set()
        return 0

    async def scenario() -> None:
        handover: Handover[int] = Handover(record, window=20, within=0.01)
        first = handover.turn(0)
        await first()
        first.accepted(1)
        held = handover.turn(0)
        await held()  # its end written, the server slow to answer: no flush, no full window
        assert await asyncio.to_thread(recorded.wait, 10), "recorded without a flush"
        assert records == [[1]]
        held.refused()
        await handover.settled()

    asyncio.run(scenario())
