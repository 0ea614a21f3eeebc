"""Where this process keeps its compiled templates (compiled.py): set by the command line.

Apart from the cache itself, which is Jinja2's: turning it on loads nothing.
"""

from __future__ import annotations

from pathlib import Path

CACHE_DIRECTORY = "template-cache"  # in the state directory

_directory: Path | None = None


def keep_in(directory: Path) -> None:
    """Keep compiled templates in `directory` for the rest of this process."""
    global _directory  # one switch for the process, set by the command line
    _directory = directory


def directory() -> Path | None:
    """Where compiled templates are kept in this process; None: not kept (the tests)."""
    return _directory
