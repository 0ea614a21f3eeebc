"""No cyclic garbage collection while an evaluation pass runs.

A first pass makes hundreds of thousands of objects that last until it ends
(rows read, intents, messages, the rows it records). CPython's collector,
started again and again by so many allocations, walked them all at each of
its full collections: a fifth of the pass's CPU time (100,000 missions: 0.5
to 0.8 s of 3.6 s). A pass makes little garbage in cycles (some 2,500
objects then), which the first collection after it frees.

The collector is the process's: in the daemon, whose pass runs in a thread,
the other threads go without collections for as long. Of passes that
overlap, the first to pause it turns it back on.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """No collection while the block runs; the collector as it was afterwards.

    (followupd.cli.collector.lasting does the same and freezes: its own, as a sync
    command loads nothing of the engine.)
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
