"""The daemon's memory: what `followupd run` without [caldav] must not load (tests/bench/idle.py).

The CalDAV client stack is 16 MB and Alembic 10 MB; the idle daemon stays
under 120 MB only without them.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

NOT_AT_IDLE = ("caldav", "niquests", "alembic")


@pytest.mark.slow
def test_the_daemon_loads_neither_caldav_nor_alembic_until_needed() -> None:
    code = (
        "import sys\n"
        "import followupd.cli.main, followupd.daemon.service\n"
        f"print(sorted(set({NOT_AT_IDLE!r}) & set(sys.modules)))\n"
    )
    command = [sys.executable, "-c", code]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
