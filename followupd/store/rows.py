"""Light rows for set-based reads: the columns of an entity, without the ORM's cost.

A rule reads thousands of missions per pass and never writes them back; ORM
instances (identity map, change tracking) cost several times more than the
rows they come from. ``record(Mission)`` selects every column of the entity as
one named row, read like the ORM object (``mission.title``), and gives None,
as the ORM would, for an outer-joined entity that is absent. A deferred column
(a follow-up's attachment) is left out, as the ORM leaves it unloaded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar, TypeVarTuple

from sqlalchemy import Result, inspect
from sqlalchemy.orm import Bundle, Session
from sqlalchemy.orm.util import AliasedClass
from sqlalchemy.sql.selectable import TypedReturnsRows

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


def streamed(session: Session, query: TypedReturnsRows[*Ts], size: int = BATCH) -> Result[*Ts]:
    """The rows of `query`, read `size` at a time as they are used (a server-side cursor on
    PostgreSQL): a rule reading many rows holds a batch of them, not all. Its `partitions()`
    are those batches."""
    return session.execute(query.execution_options(yield_per=size))
