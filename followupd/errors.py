"""The errors a user can meet, each with the exit code the README documents for it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

EX_DATAERR = 65
EX_UNAVAILABLE = 69
EX_CONFIG = 78
# `tick` only: the pass ran, and a follow-up became `failed` or `dead` in it, so
# a cron wrapper sees it. sysexits.h has no "partial failure"; 3 is ours, clear
# of 1 (anything else), 2 (a usage error, click's) and the codes above. It
# wins over EX_UNAVAILABLE: what is unreachable is retried on its own, a failed
# follow-up is never tried again until a person looks (`followupd outbox`).
EX_FOLLOWUPS_FAILED = 3


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a file, located as precisely as the file allows."""

    file: Path
    message: str
    line: int | None = None
    where: str | None = None  # a dotted key path, or a record ("invoices[2] F-2026-042")

    def __str__(self) -> str:
        place = f"{self.file}:{self.line}" if self.line else str(self.file)
        return (
            f"{place}: {self.where}: {self.message}" if self.where else f"{place}: {self.message}"
        )


class FollowupdError(Exception):
    """An error with a message meant for the user and an exit code."""

    exit_code = 1


class ProblemsError(FollowupdError):
    """Every problem found in one go, so the user can fix them all at once."""

    headline = "problems found"

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(self.render())

    def render(self) -> str:
        count = len(self.problems)
        lines = [f"{self.headline} ({count} problem{'s' if count != 1 else ''}):"]
        lines += [f"  {problem}" for problem in self.problems]
        return "\n".join(lines)


class ConfigError(ProblemsError):
    exit_code = EX_CONFIG
    headline = "invalid configuration"


class DataError(ProblemsError):
    exit_code = EX_DATAERR
    headline = "invalid data, nothing was imported"


class ServiceUnavailable(FollowupdError):
    """SMTP, CalDAV or the database could not be reached where it was needed."""

    exit_code = EX_UNAVAILABLE


class NotFound(FollowupdError):
    """A record named on the command line does not exist."""
