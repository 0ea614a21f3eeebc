"""Log lines for the daemon: plain on a terminal, with syslog priorities under journald.

When ``$JOURNAL_STREAM`` is set, stderr goes to the journal, which reads a
``<N>`` prefix as the line's priority and stamps the time itself; on a
terminal a line carries its time. Secrets never reach a log line: they are
read only where they are used and never formatted (see config.accounts.Secret).

The libraries of the calendar stack speak to their user, not to ours: caldav
warns "Ical data was modified…" with a diff of an object it repaired, urllib3
about retries, icalendar (a Python warning) about a zone name it guessed.
followupd says itself what matters (an object skipped, a calendar not
synced); their lines go through followupd's logger
``followupd.libraries`` at debug level, so they show with --debug only.

Each line names its logger, and users filter the journal by those names, so
they stay what they were when the code moved into packages: ``followupd``
(the daemon), ``followupd.engine``, ``followupd.delivery``, ``followupd.web``,
``followupd.sources.caldav``, ``followupd.sources.dav_changes``,
``followupd.sources.meetings``. A module names its logger explicitly, never
by ``__name__``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping

# the calendar stack: caldav and its HTTP client, the iCalendar readers; and the Python
# warnings they raise (icalendar's GloballyUniqueTZIDGuessed on a vendor's zone name),
# which logging.captureWarnings makes records of "py.warnings"
LIBRARIES = ("caldav", "niquests", "urllib3", "icalendar", "recurring_ical_events",
             "x_wr_timezone", "tzlocal", "py.warnings")  # fmt: skip
LIBRARY_LOG = logging.getLogger("followupd.libraries")

# syslog priorities (RFC 5424) of Python's levels
PRIORITIES = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
              logging.CRITICAL: 2}  # fmt: skip


class JournalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        priority = PRIORITIES.get(record.levelno, 6)
        # every line of a multi-line record (a traceback) keeps the priority
        return "\n".join(f"<{priority}>{line}" for line in text.splitlines())


class AtDebugLevel(logging.Handler):
    """Hands a library's log record to ``followupd.libraries``, at debug level."""

    def emit(self, record: logging.LogRecord) -> None:
        if not LIBRARY_LOG.isEnabledFor(logging.DEBUG):
            return
        try:
            message = record.getMessage()
        except Exception:  # a library's malformed record is no reason to fail
            message = str(record.msg)
        LIBRARY_LOG.debug(
            "%s %s: %s", record.name, record.levelname.lower(), message, exc_info=record.exc_info
        )


def route_libraries(debug: bool) -> None:
    """Send the calendar stack's log records through followupd's logging, at debug level."""
    handler = AtDebugLevel()
    logging.captureWarnings(True)
    for name in LIBRARIES:
        library = logging.getLogger(name)
        library.handlers[:] = [handler]
        library.propagate = False
        library.setLevel(logging.INFO if debug else logging.WARNING)


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
    for chatty in ("alembic", "aiohttp.access"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    route_libraries(debug)
    # "skipped: maximum number of running instances" is the no-overlap rule working
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
