"""Log lines for the daemon: plain on a terminal, with syslog priorities under journald.

When ``$JOURNAL_STREAM`` is set, stderr goes to the journal, which reads a
``<N>`` prefix as the line's priority and stamps the time itself; on a
terminal a line carries its time. Secrets never reach a log line: they are
read only where they are used and never formatted (see config.Secret).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping

# syslog priorities (RFC 5424) of Python's levels
PRIORITIES = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
              logging.CRITICAL: 2}  # fmt: skip


class JournalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        priority = PRIORITIES.get(record.levelno, 6)
        # every line of a multi-line record (a traceback) keeps the priority
        return "\n".join(f"<{priority}>{line}" for line in text.splitlines())


def configure(environ: Mapping[str, str], debug: bool) -> None:
    """Logging for `followupd run`: INFO (DEBUG with --debug) to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    if environ.get("JOURNAL_STREAM"):
        handler.setFormatter(JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    for chatty in ("alembic", "caldav", "aiohttp.access", "niquests"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    # "skipped: maximum number of running instances" is the no-overlap rule working
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
