"""What an evaluation pass reads and writes: new follow-ups, pending ones, cancellations.

Recording is idempotent: ``INSERT … ON CONFLICT (key) DO NOTHING``, so two
passes at the same instant, or two instances at once, record each follow-up
once.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from itertools import chain
from operator import itemgetter
from typing import Any, NamedTuple, TypedDict

from sqlalchemy import ARRAY, ColumnElement, Row, String, bindparam, cast, func, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

from followupd.domain.owner_scope import Scope
from followupd.domain.states import Audience, Channel, FollowUpState
from followupd.store.chunks import BATCH, chunked
from followupd.store.models import FollowUp
from followupd.store.outbox.rows import FollowUpRow, PendingRow
from followupd.store.rows import record
from followupd.store.upserts import insert_of

# what `Rule.vanished` reads of a pending follow-up (store.outbox.rows.PendingRow)
PENDING_COLUMNS = (
    FollowUp.key,
    FollowUp.rule,
    FollowUp.step,
    FollowUp.subject_key,
    FollowUp.concern,
    FollowUp.audience,
    FollowUp.channel,
    FollowUp.mission_id,
    FollowUp.contact_id,
    FollowUp.due_at,
    FollowUp.owner,
)


class NewFollowUp(TypedDict):
    """A follow-up as an evaluation pass records it: its intent, message and first state."""

    key: str
    owner: str
    rule: str
    step: str
    subject_key: str
    concern: str
    mission_id: int | None
    contact_id: int | None
    audience: Audience
    channel: Channel
    recipient: str | None
    language: str
    subject: str
    body: str
    thread_key: str | None
    due_at: datetime
    expires_at: datetime
    late: bool
    state: FollowUpState
    reason: str | None
    last_error: str | None
    attachment_name: str | None
    letter: str | None  # a formal notice's record (domain.formal_notice_record)
    attempts: int
    created_at: datetime
    updated_at: datetime


class Recorded(NamedTuple):
    """A follow-up as a pass has just recorded it (a `FollowUpRow`), made from what it
    inserted rather than read back: its times in UTC, as a read gives them.

    A named tuple: a first pass makes tens of thousands, and a frozen dataclass of 30
    fields took four times as long to make.
    """

    id: int
    key: str
    owner: str | None
    rule: str
    step: str
    subject_key: str
    concern: str
    mission_id: int | None
    contact_id: int | None
    audience: Audience
    channel: Channel
    recipient: str | None
    language: str
    subject: str
    body: str
    thread_key: str | None
    due_at: datetime
    expires_at: datetime | None
    late: bool
    state: FollowUpState
    reason: str | None
    attempts: int
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    next_attempt_at: datetime | None = None
    sent_at: datetime | None = None
    message_id: str | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None

    @classmethod
    def of(cls, row: NewFollowUp, id_: int, in_utc: Callable[[datetime], datetime]) -> Recorded:
        """The row `row` recorded as `id_`; `in_utc` puts its times in UTC (`_in_utc`)."""
        return cls(
            id=id_,
            key=row["key"],
            owner=row["owner"],
            rule=row["rule"],
            step=row["step"],
            subject_key=row["subject_key"],
            concern=row["concern"],
            mission_id=row["mission_id"],
            contact_id=row["contact_id"],
            audience=row["audience"],
            channel=row["channel"],
            recipient=row["recipient"],
            language=row["language"],
            subject=row["subject"],
            body=row["body"],
            thread_key=row["thread_key"],
            due_at=in_utc(row["due_at"]),
            expires_at=in_utc(row["expires_at"]),
            late=row["late"],
            state=row["state"],
            reason=row["reason"],
            attempts=row["attempts"],
            last_error=row["last_error"],
            created_at=in_utc(row["created_at"]),
            updated_at=in_utc(row["updated_at"]),
        )


def _in_utc() -> Callable[[datetime], datetime]:
    """An instant in UTC, each distinct one converted once: a pass's rows share their
    creation time and many due times. Equal instants in other zones give the same UTC time."""
    made: dict[datetime, datetime] = {}

    def in_utc(instant: datetime) -> datetime:
        try:
            return made[instant]
        except KeyError:
            converted = made[instant] = instant.astimezone(UTC)
            return converted

    return in_utc


def recorded_keys(session: Session, rule: str, since: datetime, scope: Scope) -> set[str]:
    """The keys of `rule`'s follow-ups for `scope` due at `since` or later.

    One range read, not a lookup of each key: a list of keys against a table
    whose statistics are not up to date yet (just filled by a first pass) is
    read with a sequential scan per list, seconds each on a large outbox.
    """
    return set(
        session.scalars(
            select(FollowUp.key).where(
                FollowUp.rule == rule, FollowUp.due_at >= since, scope.holds(FollowUp.owner)
            )
        )
    )


def insert_new(session: Session, rows: Sequence[NewFollowUp]) -> list[str]:
    """Insert `rows`, but for those whose key is recorded already; return the keys inserted."""
    return list(_inserted(session, rows))


def insert_recorded(session: Session, rows: Sequence[NewFollowUp]) -> list[Recorded]:
    """Insert `rows`, but for those whose key is recorded already; return those inserted,
    by due time then key, as `load` would read them back (without reading them back).

    A key given twice is inserted once, with the first row's values (the second conflicts
    with it), and returned once.
    """
    ids = _inserted(session, rows)
    utc = _in_utc()
    made = [
        Recorded.of(row, id_, utc) for row in rows if (id_ := ids.pop(row["key"], None)) is not None
    ]
    return sorted(made, key=lambda row: (row.due_at, row.key))


def _inserted(session: Session, rows: Sequence[NewFollowUp]) -> dict[str, int]:
    """Insert `rows` (ON CONFLICT (key) DO NOTHING); the id of each key inserted."""
    if not rows:
        return {}
    if session.get_bind().dialect.name == "postgresql":
        return _inserted_as_arrays(session, rows)
    return _inserted_as_tuples(session, rows)


def _inserted_as_tuples(session: Session, rows: Sequence[NewFollowUp]) -> dict[str, int]:
    """`_inserted` on SQLite: the statement written once a batch size, and the values sent to
    the driver as plain tuples (`_driver_columns`).

    SQLAlchemy's insert of many rows runs every value through its type's processing and
    builds each batch's statement anew: most of the inserts' cost on a first pass (20,000
    rows of 26 columns).
    """
    connection = session.connection()
    dialect = connection.dialect
    names = list(rows[0])
    quote = dialect.identifier_preparer.quote
    listed = ", ".join(quote(FollowUp.__table__.columns[name].name) for name in names)
    head = f"INSERT INTO {quote(FollowUp.__tablename__)} ({listed}) VALUES "  # noqa: S608 (no value)
    marks = f"({', '.join('?' * len(names))})"
    tail = f" ON CONFLICT ({quote('key')}) DO NOTHING RETURNING {quote('key')}, {quote('id')}"
    inserted: dict[str, int] = {}
    for chunk in chunked(rows):
        columns = _driver_columns(dialect, names, chunk)
        values = tuple(chain.from_iterable(zip(*columns, strict=True)))  # row after row
        statement = head + ", ".join([marks] * len(chunk)) + tail  # names and marks, no value
        result = connection.exec_driver_sql(statement, values)
        inserted.update((key, id_) for key, id_ in result)
    return inserted


def _inserted_as_arrays(session: Session, rows: Sequence[NewFollowUp]) -> dict[str, int]:
    """`_inserted` on PostgreSQL: each column's values sent as one array, in binary, the rows
    made of them by ``unnest``.

    psycopg rewrites a statement's named placeholders into its own in Python,
    one at a time, and caches no long statement: a multi-row VALUES of 500
    rows of 26 columns is 13,000 placeholders, which made the inserts most of a
    first pass on PostgreSQL (9 of 18 s for 19,000 rows). Here a statement has
    one placeholder a column, whatever its rows. Its values are converted by
    their columns' types here (`_driver_columns`), and its placeholders are
    psycopg's binary ones (``%(name)b``): psycopg writes an array as text in
    Python, quoting each item with a regular expression, six times slower.

    A COPY of a pass's batches (the keys recorded already looked up first, ids
    taken from the sequence: the evaluation lock allows it) was measured at
    1,000,000 missions: its inserts alone cost less (1.4 CPU s in the server,
    0.9 in Python, of 189,291 rows), but whole first passes took 2 to 7 more
    CPU s in Python (35-47 s) and no less in the server, the server working
    on a batch while it is still being written: not kept (branch million2-tried).
    """
    insert = insert_of(session)
    columns = FollowUp.__table__.columns
    names = list(rows[0])
    types = {name: ARRAY(_unbounded(columns[name].type)) for name in names}
    made = (
        func.unnest(*(cast(bindparam(name, type_=types[name]), types[name]) for name in names))
        .table_valued(*names)
        .render_derived()
    )  # unnest(…) AS anon_1(key, owner, …)
    statement = (
        insert(FollowUp)
        .from_select(names, select(*made.columns))
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(FollowUp.key, FollowUp.id)
    )
    connection = session.connection()
    compiled = statement.compile(dialect=connection.dialect)
    binary = _TEXT_PLACEHOLDER.sub(r"%(\1)b", compiled.string)
    placeholders = {bind.key: name for name, bind in compiled.binds.items()}
    inserted: dict[str, int] = {}
    for chunk in chunked(rows, BATCH):
        columns_of = zip(names, _driver_columns(connection.dialect, names, chunk), strict=True)
        arrays = {placeholders[name]: column for name, column in columns_of}
        result = connection.exec_driver_sql(binary, arrays)
        inserted.update((key, id_) for key, id_ in result)
    return inserted


def _unbounded(type_: TypeEngine[Any]) -> TypeEngine[Any]:
    """A column's type for its array of values, without its length: PostgreSQL's explicit
    cast to ``varchar(n)[]`` cuts a longer value, where the insert into the column refuses
    it ("value too long"), as a plain INSERT would."""
    return String() if isinstance(type_, String) and type_.length else type_


_TEXT_PLACEHOLDER = re.compile(r"%\((\w+)\)s")  # psycopg's %(name)s


def _driver_columns(
    dialect: Dialect, names: Sequence[str], rows: Sequence[NewFollowUp]
) -> list[list[Any]]:
    """The values of `rows`' columns `names`, a list a column, each value as its column's
    type gives it to the driver.

    A pass's rows share most of their converted values (the pass's time, a few due dates,
    a state): each distinct value of a column is converted once. Equal values convert
    alike: an instant in any zone is stored as the same UTC time.
    """
    table = FollowUp.__table__
    values_of = itemgetter(*names)  # a tuple of them, but for one name: the value
    made = map(values_of, rows) if len(names) > 1 else ((values_of(row),) for row in rows)
    columns = [list(column) for column in zip(*made, strict=True)] or [[] for _ in names]
    for index, name in enumerate(names):
        process = table.columns[name].type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            column = columns[index]
            converted = {value: process(value) for value in set(column)}
            columns[index] = list(map(converted.__getitem__, column))
    return columns


def load(session: Session, keys: Sequence[str]) -> list[FollowUpRow]:
    """The outbox rows with these keys, by due time, as light read-only rows."""
    rows: list[FollowUpRow] = []
    for chunk in chunked(keys):
        query = select(record(FollowUp, "followup")).where(FollowUp.key.in_(chunk))
        rows += [row for (row,) in session.execute(query)]
    return sorted(rows, key=lambda row: (row.due_at, row.key))


def states(session: Session, keys: Sequence[str]) -> list[Row[str, str, str]]:
    """The key, rule and state of the outbox rows with these keys (to count them)."""
    found: list[Row[str, str, str]] = []
    for chunk in chunked(keys):
        query = select(FollowUp.key, FollowUp.rule, FollowUp.state).where(FollowUp.key.in_(chunk))
        found += session.execute(query).all()
    return found


def empty(session: Session) -> bool:
    """Whether the outbox has no follow-up at all (a new store, before its first pass)."""
    return session.scalar(select(FollowUp.id).limit(1)) is None


def pending(
    session: Session, asked: Callable[[str, str, str | None], bool] | None = None
) -> list[PendingRow]:
    """Every pending follow-up, with what its rule needs to tell whether its reason went.

    With `asked` (of a row's key, rule and owner), only the rows it keeps: those
    three columns are read first, then the rest of the rows kept, by key (a
    steady pass asks about a few of thousands).
    """
    query = select(*PENDING_COLUMNS).where(FollowUp.state == FollowUpState.PENDING)
    if asked is None:
        return list(session.execute(query))
    which = select(FollowUp.key, FollowUp.rule, FollowUp.owner).where(
        FollowUp.state == FollowUpState.PENDING
    )
    keys = [key for key, rule, owner in session.execute(which) if asked(key, rule, owner)]
    # by key alone, then the state: with the state in the query, SQLite reads every pending
    # row of the index on (state, due_at) for each chunk, not the few by the unique key
    by_key = select(*PENDING_COLUMNS, FollowUp.state)
    rows: list[PendingRow] = []
    for chunk in chunked(keys):
        found = session.execute(by_key.where(FollowUp.key.in_(chunk)))
        rows += (row for row in found if row.state == FollowUpState.PENDING)
    return rows


def end_pending(
    session: Session,
    which: ColumnElement[bool],
    state: FollowUpState,
    reason: str,
    at: datetime,
) -> int:
    """The follow-ups `which` selects that are still pending, ended as `state`; how many."""
    result = session.execute(
        update(FollowUp)
        .where(which, FollowUp.state == FollowUpState.PENDING)
        .values(state=state, reason=reason, updated_at=at)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0))


def cancel(session: Session, cancelled: dict[str, str], at: datetime) -> None:
    """Cancel the follow-ups keyed in `cancelled` (key -> reason) that are still pending."""
    for reason, keys in _group_by_reason(cancelled).items():
        for chunk in chunked(keys):
            session.execute(
                update(FollowUp)
                .where(FollowUp.key.in_(chunk), FollowUp.state == FollowUpState.PENDING)
                .values(state=FollowUpState.CANCELLED, reason=reason, updated_at=at)
            )


def _group_by_reason(cancelled: dict[str, str]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for key, reason in cancelled.items():
        grouped[reason].append(key)
    return grouped
