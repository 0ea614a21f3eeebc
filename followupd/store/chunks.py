"""Statements over many keys go in chunks, to stay within the engines' parameter limits;
long streams are handled in batches, to keep a pass's memory bounded."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import TypeVar

T = TypeVar("T")
CHUNK = 500
BATCH = 2000  # what a pass holds at once of a long stream (intents, rows)


def chunked(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def batches(items: Iterable[T], size: int = BATCH) -> Iterator[list[T]]:
    """`items` in lists of `size` (the last one shorter), read as they come."""
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch
