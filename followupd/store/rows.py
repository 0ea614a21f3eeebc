"""Light rows for set-based reads: the columns of an entity, without the ORM's cost.

A rule reads thousands of missions per pass and never writes them back; ORM
instances (identity map, change tracking) cost several times more than the
rows they come from. ``record(Mission)`` selects every column of the entity as
one named row, read like the ORM object (``mission.title``), and gives None,
as the ORM would, for an outer-joined entity that is absent. A deferred column
(a follow-up's attachment) is left out, as the ORM leaves it unloaded.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterator, Sequence
from functools import cache
from operator import itemgetter
from typing import Any, Protocol, TypeVar, TypeVarTuple

from sqlalchemy import ColumnElement, Result, Select, inspect
from sqlalchemy.engine.result import result_tuple
from sqlalchemy.orm import Bundle, QueryableAttribute, Session
from sqlalchemy.orm.util import AliasedClass

from followupd.store.chunks import BATCH
from followupd.store.models import Base

ModelT = TypeVar("ModelT", bound=Base)
Ts = TypeVarTuple("Ts")


class _Record(Bundle[ModelT]):
    def create_row_processor(
        self, query: Any, procs: Sequence[Callable[[Any], Any]], labels: Sequence[str]
    ) -> Callable[[Any], Any]:
        make = super().create_row_processor(query, procs, labels)

        def absent_as_none(row: Any) -> Any:
            value = make(row)
            return None if value[0] is None else value  # the primary key comes first

        return absent_as_none


def record(entity: type[ModelT] | AliasedClass[ModelT], name: str | None = None) -> Bundle[ModelT]:
    """Every column of `entity` (a model or an alias) but deferred ones, primary key first,
    as one row.

    Typed as the model, for its columns: the row has no relationships.
    """
    mapper = inspect(entity).mapper
    keys = [mapper.get_property_by_column(column).key for column in mapper.primary_key]
    keys += [attr.key for attr in mapper.column_attrs if attr.key not in keys and not attr.deferred]
    return _Record(name or mapper.class_.__tablename__, *(getattr(entity, key) for key in keys))


def columns(name: str, *exprs: Any) -> Bundle[Any]:
    """Some columns as one row named `name`, read as a `record` is: None when the first is
    None (that of an outer-joined entity that is absent, or a value the caller reads so)."""
    return _Record(name, *exprs)


def streamed(session: Session, query: Select[*Ts], size: int = BATCH) -> Streamed[*Ts]:
    """The rows of `query`, read `size` at a time as they are used (a server-side cursor on
    PostgreSQL): a rule reading many rows holds a batch of them, not all. Its `partitions()`
    are those batches.

    A query of `record`s (and single columns) is read as plain columns, without the ORM,
    each record's row made of its slice of them: the ORM's handling of a row of bundles
    cost as much as reading it (a first pass reads some 25,000 such rows).
    """
    described = [found["expr"] for found in query.column_descriptions]
    plain = (_Record, ColumnElement, QueryableAttribute)  # no entity, no other bundle
    if not all(isinstance(expr, plain) for expr in described):
        return _Rows(session.execute(query.execution_options(yield_per=size)), None)
    columns: list[Any] = []
    makers: list[Callable[[Sequence[Any]], Any]] = []
    for expr in described:
        if isinstance(expr, _Record):
            makers.append(_record_maker(expr, len(columns)))
            columns += expr.exprs
        else:
            makers.append(itemgetter(len(columns)))
            columns.append(expr)
    flat = query.with_only_columns(*columns, maintain_column_froms=True)
    if session.autoflush:  # what the ORM's execute would have flushed first
        session.flush()
    result = session.connection().execute(flat.execution_options(yield_per=size))
    return _Rows(result, makers)


class Streamed(Protocol[*Ts]):
    """What `streamed` gives: its rows, one at a time or a batch at a time."""

    def __iter__(self) -> Iterator[tuple[*Ts]]: ...
    def partitions(self) -> Iterator[Sequence[tuple[*Ts]]]: ...


class _Rows:
    """A result's rows, each remade by `makers` (one a selected entity) unless None."""

    def __init__(self, result: Result[Any], makers: list[Callable[[Sequence[Any]], Any]] | None):
        self._result, self._makers = result, makers

    def _remade(self, rows: Sequence[Any]) -> Sequence[Any]:
        makers = self._makers
        if makers is None:
            return rows
        return [tuple([make(row) for make in makers]) for row in rows]

    def __iter__(self) -> Iterator[Any]:
        for batch in self.partitions():
            yield from batch

    def partitions(self) -> Iterator[Sequence[Any]]:
        for batch in self._result.partitions():
            yield self._remade(batch)


def _record_maker(entity: _Record[Any], start: int) -> Callable[[Sequence[Any]], Any]:
    """The row of `entity` (a `record`) made of its columns from `start` on, None for an
    outer-joined entity that is absent (its primary key, first, is None), as the ORM does."""
    labels = list(entity.c.keys())
    make = _light_row(tuple(labels))
    end = start + len(labels)

    def made(row: Sequence[Any]) -> Any:
        values = row[start:end]
        return None if values[0] is None else make(values)

    return made


@cache
def _light_row(labels: tuple[str, ...]) -> Callable[[Sequence[Any]], Any]:
    """What makes a row of these columns: a named tuple, printed as a plain one.

    Read by name as SQLAlchemy's Row is (``mission.title``, ``_fields``), about
    ten times faster: the rules and the templates of a first pass read fields
    some hundreds of thousands of times. Columns whose names a named tuple
    cannot take get SQLAlchemy's Row.
    """
    try:
        kind = namedtuple("record", labels)  # type: ignore[misc]
    except ValueError:
        return result_tuple(list(labels))
    kind.__repr__ = tuple.__repr__  # type: ignore[method-assign]
    new = tuple.__new__

    def make(values: Sequence[Any]) -> Any:
        return new(kind, values)

    return make
