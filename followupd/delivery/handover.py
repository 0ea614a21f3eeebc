"""The handover of messages: at most one accepted by a server and not yet recorded sent.

SMTP cannot be exactly-once: a crash between the server's "250" at the end of
a message and the record of it sends that message again, with the same
Message-ID. The handover keeps that window to one message per instance,
across all its connections: a message's last line (the "." that ends DATA,
or the write into a Maildir) waits until the message accepted before it is
recorded. The record of one message still overlaps the transmission of the
next: only its end waits.

A record that finds its claim taken over (the worker taken for dead, its
claims handed back) raises the doubt: a message whose claims were checked
before that does not end (`ClaimsInDoubt`) until they are checked again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class ClaimsInDoubt(Exception):
    """A record found its claim taken over since this message's claim was checked."""


class Handover(Generic[T]):
    """Messages ended one at a time; each one accepted recorded (`record`, in a thread)
    before the next may end. A record that raised stops every message after it; one that
    found its claim taken over (`record` gave False) counts in `losses`.

    `at_once`, when given, is tried first, on the event loop's thread: a record that
    waits for nothing (None when it would wait, or cannot: then `record` makes it).
    """

    def __init__(
        self, record: Callable[[T], bool], at_once: Callable[[T], bool | None] | None = None
    ) -> None:
        self.record = record
        self.at_once = at_once
        self.lock = asyncio.Lock()  # held from a message's end until its record is committed
        self.failure: BaseException | None = None
        self.recording: asyncio.Task[None] | None = None
        self.losses = 0  # records that found their claim taken over

    def turn(self, checked: int) -> Turn[T]:
        """The turn of one message whose claim was checked when `losses` was `checked`:
        its sender awaits it right before the message's end."""
        return Turn(self, checked)

    async def settled(self) -> None:
        """Return once the last message accepted is recorded; raises what its record raised."""
        if self.recording is not None:
            await asyncio.shield(self.recording)
        if self.failure is not None:
            raise self.failure

    async def _record(self, item: T) -> None:
        try:
            done = self.at_once(item) if self.at_once is not None else None
            if done is None:
                done = await asyncio.to_thread(self.record, item)
            if not done:
                self.losses += 1
        except BaseException as error:
            self.failure = error
        finally:
            self.lock.release()


class Turn(Generic[T]):
    """One message's place: awaited before its end, then `accepted` or `refused`."""

    def __init__(self, handover: Handover[T], checked: int) -> None:
        self.handover = handover
        self.checked = checked
        self.held = False

    async def __call__(self) -> None:
        """Wait until no message accepted before is left unrecorded, and take the turn.

        Raises what a record raised: a message must not end when the one
        before it may not be recorded (the database is gone, say); and
        ClaimsInDoubt when a record found its claim taken over since this
        message's claim was checked.
        """
        handover = self.handover
        if self.held:  # again, as the message goes again on a new connection
            return
        if handover.failure is not None:
            raise handover.failure
        await handover.lock.acquire()
        self.held = True
        if handover.failure is not None:
            self.refused()
            raise handover.failure
        if handover.losses > self.checked:
            self.refused()
            raise ClaimsInDoubt

    def accepted(self, item: T) -> None:
        """The server accepted the message: record `item`, and end the turn once it is."""
        handover = self.handover
        if not self.held:  # a sender with no end to wait for: recorded in turn all the same
            raise RuntimeError("a message accepted without its turn")
        self.held = False
        handover.recording = asyncio.create_task(handover._record(item))

    def refused(self) -> None:
        """The message did not go (refused, or its connection failed): the turn ends now."""
        if self.held:
            self.held = False
            self.handover.lock.release()
