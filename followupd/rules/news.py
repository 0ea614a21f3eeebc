"""Reading whole only the subjects that have a new follow-up.

A steady pass finds most of what is due recorded already: each rule reads its
candidates (a mission with its client and contact, dozens of columns each)
and makes intents the engine then finds in the outbox (`Evaluation.recorded`).
A rule whose subjects are each evaluated on their own (nothing carried from
one to the next) can first read the few columns that tell its keys, and read
whole, to make its intents, only the subjects with a key not yet recorded.
A rule that evaluates some subjects together (a formal notice cites the
client's other invoices, a call lists the contact's) names what ties them
(`group`): a subject is then read whole when any subject of its group has a
new key, so that the group is evaluated as a pass reading everything would.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select
from sqlalchemy.orm import InstrumentedAttribute

from followupd.rules.base import Evaluation
from followupd.store.chunks import chunked
from followupd.store.rows import streamed


def with_news(
    evaluation: Evaluation,
    narrow: Select[*tuple[Any, ...]],
    keys: Callable[[Sequence[Any]], Iterable[str]],
    id_column: InstrumentedAttribute[int],
    *,
    kept: bool,
    group: Callable[[Sequence[Any]], Hashable] | None = None,
) -> Iterator[tuple[ColumnElement[bool], ...]]:
    """What to add to a rule's query, in turn, to read only the subjects with a new key.

    `narrow` reads, first, the id of each candidate (`id_column`), then what
    `keys` needs to tell the keys of its follow-ups due in the window. Without
    `Evaluation.recorded` (a plan lists everything), or with nothing recorded
    yet (a first pass: every subject is new, the narrow read would only double
    the reading), nothing is added: one empty tuple, and `narrow` is not read.

    With `group` (what ties a narrow row to the others evaluated with it), every
    candidate of a group with a new key is read whole. `narrow` must keep the
    candidates the rule's query keeps, and the rule must gather what it reads
    over the chunks before it evaluates them together (a group may span two).

    With `kept`, the rule's `vanished` never cancels a follow-up it would make
    now: those keys go into `Evaluation.due`, and the engine does not ask it
    about them.
    """
    recorded, due = evaluation.recorded, evaluation.due if kept else None
    if not recorded:  # a plan, or nothing recorded yet (a first pass): every subject is new
        yield ()
        return
    news: list[Any] = []
    tied: list[tuple[Any, Hashable]] = []  # with `group`: (id, its group) of every candidate
    new_groups: set[Hashable] = set()
    for row in streamed(evaluation.session, narrow):
        found = list(keys(row))
        if due is not None:
            due.update(found)
        new = any(key not in recorded for key in found)
        if group is None:
            if new:
                news.append(row[0])
            continue
        tie = group(row)
        tied.append((row[0], tie))
        if new:
            new_groups.add(tie)
    if group is not None:
        news = [id_ for id_, tie in tied if tie in new_groups]
    for chunk in chunked(news):
        yield (id_column.in_(chunk),)
