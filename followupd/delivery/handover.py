"""The handover of messages: at most `window` accepted by a server and not yet recorded sent.

SMTP cannot be exactly-once: a crash between the server's "250" at the end of
a message and the record of it sends that message again, with the same
Message-ID. The handover bounds that window per instance, across all its
connections: a message's last line (the "." that ends DATA, or the write into
a Maildir) waits while `window` messages are ended and not yet recorded.
Those accepted are recorded together, in one transaction: once the window is
full, when a sender has sent its sub-batch (`flush`), at the end (`settled`),
and `within` seconds after the first of them was accepted, whichever comes
first: a server slow to answer a message's end does not keep the others
unrecorded. With a window of one (delivery's: `deliverer.UNRECORDED`), each
message ends only once the one accepted before it is recorded; with a
sub-batch's, a record serves a sub-batch, and a crash sends at most a
sub-batch again.

A record that finds claims taken over (the worker taken for dead, its
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
    """Messages ended with at most `window` of them accepted (or ending) and not recorded;
    those accepted recorded together (`record`, in a thread: it gives how many claims it
    found taken over, counted in `losses`). A record that raised stops every message
    after it.

    `at_once`, when given, is tried first, on the event loop's thread: a record that
    waits for nothing (None when it would wait, or cannot: then `record` makes it).
    """

    def __init__(
        self,
        record: Callable[[list[T]], int],
        at_once: Callable[[list[T]], int | None] | None = None,
        window: int = 1,
        within: float = 0.01,
    ) -> None:
        if window < 1:
            raise ValueError("a window of at least one message")
        self.record = record
        self.at_once = at_once
        self.window, self.within = window, within
        self.timer: asyncio.TimerHandle | None = None  # a record `within` the first accepted
        self.ending = 0  # turns taken: their end written, or about to be, no answer yet
        self.accepted: list[T] = []  # accepted, their record not started
        self.recording_count = 0  # accepted, their record under way
        self.added = self.recorded = 0  # accepted, and settled by a record (made or failed)
        self.wanted = 0  # what a flush asked to record: every item accepted before it
        self.failure: BaseException | None = None
        self.recording: asyncio.Task[None] | None = None
        self.changed: asyncio.Future[None] | None = None  # woken as the window moves
        self.losses = 0  # claims the records found taken over

    def turn(self, checked: int) -> Turn[T]:
        """The turn of one message whose claim was checked when `losses` was `checked`:
        its sender awaits it right before the message's end."""
        return Turn(self, checked)

    @property
    def full(self) -> bool:
        return self.ending + len(self.accepted) + self.recording_count >= self.window

    def flush(self) -> None:
        """Record soon what was accepted so far (a sender's sub-batch went)."""
        self.wanted = max(self.wanted, self.added)
        self._start()

    async def settled(self) -> None:
        """Return once every message accepted is recorded; raises what a record raised."""
        self.flush()
        while self.recording is not None:
            await asyncio.shield(self.recording)
            self._start()  # what was accepted meanwhile
        if self.failure is not None:
            raise self.failure

    def _start(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.recording is None and self.accepted and self.failure is None:
            self.recording = asyncio.create_task(self._run())

    def _soon(self) -> None:
        """Record what was accepted `within` seconds, unless something records it first."""
        if self.timer is None and self.recording is None and self.accepted:
            self.timer = asyncio.get_running_loop().call_later(self.within, self.flush)

    async def _run(self) -> None:
        try:
            while self.accepted and self.failure is None:
                items, self.accepted = self.accepted, []
                self.recording_count = len(items)
                try:
                    lost = self.at_once(items) if self.at_once is not None else None
                    if lost is None:
                        lost = await asyncio.to_thread(self.record, items)
                    self.losses += lost
                except BaseException as error:
                    self.failure = error
                finally:
                    self.recording_count = 0
                    self.recorded += len(items)
                    self._wake()
                if self.recorded >= self.wanted and not self.full:
                    break  # the rest waits for a full window or a flush
        finally:
            self.recording = None
            self._soon()  # what was accepted meanwhile
            self._wake()

    def _wake(self) -> None:
        if self.changed is not None and not self.changed.done():
            self.changed.set_result(None)
        self.changed = None

    async def _moved(self) -> None:
        """Return once the window moved (a record ended, a turn ended)."""
        if self.changed is None:
            self.changed = asyncio.get_running_loop().create_future()
        await asyncio.shield(self.changed)


class Turn(Generic[T]):
    """One message's place: awaited before its end, then `accepted` or `refused`."""

    def __init__(self, handover: Handover[T], checked: int) -> None:
        self.handover = handover
        self.checked = checked
        self.held = False

    async def __call__(self) -> None:
        """Wait until the window has room, and take the turn.

        Raises what a record raised: a message must not end when one accepted
        before it may not be recorded (the database is gone, say); and
        ClaimsInDoubt when a record found its claim taken over since this
        message's claim was checked.
        """
        handover = self.handover
        if self.held:  # again, as the message goes again on a new connection
            return
        while True:
            if handover.failure is not None:
                raise handover.failure
            if not handover.full:
                break
            handover.wanted = max(handover.wanted, handover.added)  # full: record them now
            handover._start()
            await handover._moved()
        if handover.losses > self.checked:
            raise ClaimsInDoubt
        handover.ending += 1
        self.held = True

    def accepted(self, item: T) -> None:
        """The server accepted the message: `item` to record (now if the window is full)."""
        handover = self.handover
        if not self.held:  # a sender with no end to wait for: recorded in turn all the same
            raise RuntimeError("a message accepted without its turn")
        self.held = False
        handover.ending -= 1
        handover.accepted.append(item)
        handover.added += 1
        if handover.full:
            handover.flush()
        else:
            handover._soon()
        handover._wake()

    def refused(self) -> None:
        """The message did not go (refused, or its connection failed): the turn ends now."""
        if self.held:
            self.held = False
            self.handover.ending -= 1
            self.handover._wake()
