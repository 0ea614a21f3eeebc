"""The garbage collector in a command's own process: kept off the objects that last.

A command imports SQLAlchemy, pydantic, the config's models and the rules:
some 120,000 objects that live as long as the process. CPython's collector
walks them again and again, while they are made (each import allocates
enough to start a collection) and while the interpreter shuts down (it
collects several times as it empties the modules): nearly a third of the
CPU time of `followupd plan`. Frozen (gc.freeze), they are left out of
every later collection, and freed with the process; what the command
itself makes is collected as usual. Only for main() run as the process's
own command line: in a longer one (the tests), frozen garbage would never
be freed.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def lasting() -> Iterator[None]:
    """No collection while the block runs (a module's import); what it made is frozen."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def before_exit() -> None:
    """Freeze what is left, so that the interpreter's shutdown does not collect it again."""
    gc.freeze()
