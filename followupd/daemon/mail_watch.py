"""The daemon's watch on the mailboxes: one thread per inbox folder, in IDLE, that wakes a sync.

A reply must stop the nudges within seconds, not at the next timed sync:
each folder of ``folders`` (where replies arrive) has a connection of its
own in IDLE (RFC 2177; NOOP polling on a server without it), and anything
new there wakes the daemon's mailbox sync at once. The sent folder is read
at each timed sync: what the owner sends is not urgent. Only the leading
instance watches, as only it syncs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

from followupd.config.settings import Settings
from followupd.domain.owner_scope import mailbox_sources

log = logging.getLogger("followupd.sources.imap")

STOP_SECONDS = 5.0  # how long stopping waits for each watcher to end


class MailWatchers:
    """The watcher threads of the mailboxes in the config, started and stopped together."""

    def __init__(self) -> None:
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(
        self, settings: Settings, environ: Mapping[str, str], wake: Callable[[], None]
    ) -> None:
        """Watch every inbox folder of every mailbox; `wake` is called from their threads."""
        from followupd.sources.imap.watch import watch_inbox  # the IMAP client, if needed

        self.stop(wait=False)
        self.stop_event = threading.Event()
        started = len(self.threads)
        for account, _ in mailbox_sources(settings):
            for folder in account.folders:
                thread = threading.Thread(
                    target=watch_inbox,
                    args=(account, folder, wake, self.stop_event),
                    kwargs={"environ": environ},
                    name=f"imap-watch {account.account} {folder}",
                    daemon=True,  # never keeps the process alive: stop() is the way out
                )
                thread.start()
                self.threads.append(thread)
        if len(self.threads) > started:
            log.info("watching %d mailbox folder(s) for replies", len(self.threads) - started)

    def stop(self, *, wait: bool) -> None:
        """Stop every watcher; with `wait`, a little for each (a connect under way takes longer).

        Without it, they end on their own within a second or so, from the event
        loop's point of view at once (a thread never blocks it); those not ended
        yet are kept, so that a later stop with `wait` (the daemon's last) waits
        for them too, not only for the ones a reload started since.
        """
        self.stop_event.set()
        if not wait:
            self.threads = [thread for thread in self.threads if thread.is_alive()]
            return
        for thread in self.threads:
            thread.join(STOP_SECONDS)
            if thread.is_alive():
                log.warning("%s still connecting; left to end on its own", thread.name)
        self.threads = []
