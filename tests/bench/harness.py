"""What every benchmark script shares: its scratch folder, and the figures it hands to run_all.

Each benchmark prints its own report for a reader; with ``--figures FILE`` it
also writes the numbers that report is made of, as one JSON object, so
tests/bench/run_all can put them in one table without parsing text meant
for people.
"""

from __future__ import annotations

import argparse
import compileall
import json
import math
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@contextmanager
def workdir(prefix: str, keep: bool = False) -> Iterator[Path]:
    """A temp folder for one run, removed afterwards unless `keep`; then the run's wall time."""
    started = time.perf_counter()
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        if keep:
            print(f"kept {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)
    print(f"\nwhole benchmark: {time.perf_counter() - started:.1f} s")


@contextmanager
def in_memory(prefix: str) -> Iterator[Path]:
    """A temp folder in /dev/shm (a tmpfs: fsync costs nothing there), else in the temp dir."""
    memory = Path("/dev/shm")
    place = memory if memory.is_dir() and os.access(memory, os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix=prefix, dir=place) as path:
        yield Path(path)


@dataclass(frozen=True)
class Ran:
    """One whole process, run to its end: its exit code, its times and what it printed."""

    code: int
    wall: float  # seconds from its spawn to its exit
    cpu: float  # user + system seconds: its own rusage, with the children it waited for
    output: str  # stdout and stderr, interleaved

    def figures(self) -> dict[str, float]:
        return {"wall": self.wall, "cpu": self.cpu}


def run_process(
    command: Sequence[str | Path],
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Ran:
    """Spawn `command` as a user would, wait for its end: wall seconds, and CPU from wait4.

    The CPU seconds are the child's own (os.wait4's rusage), not this
    process's: a peer and followupd are measured alike, start-up included.
    """
    with tempfile.TemporaryFile() as output:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=output,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        output.seek(0)
        text = output.read().decode(errors="replace")
    return Ran(process.returncode, wall, usage.ru_utime + usage.ru_stime, text)


def compile_followupd() -> None:
    """followupd's modules compiled to bytecode beside them, as `pip install` leaves them.

    A user's installed followupd reads its bytecode; a checkout's would be
    compiled anew by each process were PYTHONDONTWRITEBYTECODE set (as it is
    in some shells), a cost no installed copy pays. The libraries, installed
    by pip, are compiled already.
    """
    import followupd

    compileall.compile_dir(Path(followupd.__file__).parent, quiet=1)


def add_figures_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--figures", metavar="FILE", help="also write the figures as JSON to FILE (for run_all)"
    )


def save_figures(path: str | None, figures: Mapping[str, Any]) -> None:
    if path:
        Path(path).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile: the smallest value at least `share` of them do not exceed."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def stage_seconds(entries: list[Any], path: str, name: str) -> float:
    """Time spent inside the function `name` of the file ending in `path` (callees
    included) in cProfile `entries`; a built-in is named with no `path`."""
    total = 0.0
    for entry in entries:
        code = entry.code
        if isinstance(code, str):
            total += entry.totaltime if not path and code == name else 0.0
        elif code.co_qualname == name and code.co_filename.replace(os.sep, "/").endswith(path):
            total += entry.totaltime
    return total
