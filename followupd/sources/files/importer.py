"""`followupd import`: data files into the store, all or nothing.

Every file is read and every record checked (fields, then references against
the files and the database) before anything is written; one problem anywhere
means nothing is written, and every problem is reported. Records are matched
by their natural key. A field left out of a record keeps its stored value, so
re-importing an old file never undoes `followupd invoice paid` and the like;
a JSON ``null`` clears an optional field.
"""

from __future__ import annotations

import difflib
import json
import re
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from sqlalchemy import select
from sqlalchemy.orm import Session

from followupd.config.owners import SINGLE_OWNER_KEY
from followupd.config.toml_positions import KeyPath, format_path, line_of, loads_tolerant
from followupd.config.types import model_in
from followupd.errors import DataError, Problem
from followupd.sources.files.json_positions import json_positions
from followupd.sources.files.payment_terms import TermsPolicy, check_payment_terms
from followupd.sources.files.records import RECORD_KINDS, Record, TouchpointRecord
from followupd.store.chunks import chunked
from followupd.store.coordination import CHANGED, announce
from followupd.store.db import Store
from followupd.store.models import Base, Client, Contact, Invoice, Issue, Mission, Touchpoint

MODELS: dict[str, type[Base]] = {
    "clients": Client,
    "contacts": Contact,
    "missions": Mission,
    "invoices": Invoice,
    "issues": Issue,
    "touchpoints": Touchpoint,
}
# a change to a file's parsed data before its records are checked
Adjust = Callable[[dict[str, Any]], dict[str, Any]]
# columns that hold a reference, by the record field that names it
REFERENCE_COLUMNS = {"client": "client_id", "contact": "contact_id", "mission": "mission_id"}


@dataclass
class Located:
    """A valid record and where it came from."""

    record: Record
    file: Path
    kind: str
    index: int
    lines: dict[KeyPath, int]  # positions in the file

    @property
    def line(self) -> int | None:
        return self.lines.get((self.kind, self.index))

    def where(self, field_name: str | None = None) -> str:
        place = f"{self.kind}[{self.index}] ({self.record.identity()})"
        return f"{place} {field_name}" if field_name else place

    def problem(self, message: str, field_name: str | None = None) -> Problem:
        path: KeyPath = (self.kind, self.index) + ((field_name,) if field_name else ())
        line = line_of(self.lines, path)
        return Problem(self.file, message, line=line, where=self.where(field_name))


@dataclass
class ImportReport:
    """How many records of each kind were created, updated or left as they were.

    `warnings`: what was imported all the same but deserves a look (an invoice
    due beyond the legal cap on payment terms), located as problems are.
    """

    created: Counter[str] = field(default_factory=Counter)
    updated: Counter[str] = field(default_factory=Counter)
    unchanged: Counter[str] = field(default_factory=Counter)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def changes(self) -> int:
        return sum(self.created.values()) + sum(self.updated.values())


def import_files(
    store: Store,
    paths: Sequence[Path],
    zone: ZoneInfo,
    owners: Collection[str] = (SINGLE_OWNER_KEY,),
    adjust: Adjust | None = None,
    terms: Mapping[str, TermsPolicy] | None = None,
) -> ImportReport:
    """Import `paths` in one transaction; raise DataError listing every problem.

    `owners` are the keys a mission's ``owner`` may name (the config's owners).
    `adjust`, when given, changes each file's parsed data before it is checked
    (the demo's dates are moved so); it must keep its structure, which the
    line numbers of problems are found by. `terms`, each owner's payment terms
    policy by key (`terms_policies`), checks the invoices' due dates against
    the legal cap: a warning in the report, or a problem; None: no check.
    """
    records, problems = read_files(paths, zone, adjust)
    with store.session() as session:
        problems += check_references(session, records, owners)
        terms_found = check_payment_terms(session, records, terms or {})
        problems += terms_found.errors
        if problems:
            raise DataError(in_file_order(problems, paths))
        report = apply(session, records)
        report.warnings = in_file_order(terms_found.warnings, paths)
        if report.changes:
            announce(session, CHANGED)
        return report


def in_file_order(problems: Iterable[Problem], paths: Sequence[Path]) -> list[Problem]:
    """`problems` file by file as given, then by line, then by record.

    They are found check by check (fields, then references, then payment
    terms), so a problem on line 31 could come before one on line 5.
    """
    rank = {path: number for number, path in enumerate(paths)}

    def key(problem: Problem) -> tuple[int, int, int, int]:
        record = _RECORD_PLACE.match(problem.where or "")
        kind, index = (
            (list(RECORD_KINDS).index(record[1]), int(record[2]))
            if record and record[1] in RECORD_KINDS
            else (-1, -1)
        )
        return rank.get(problem.file, len(rank)), problem.line or 0, kind, index

    return sorted(problems, key=key)


_RECORD_PLACE = re.compile(r"(\w+)\[(\d+)\]")


# -- reading ----------------------------------------------------------------------------


def read_files(
    paths: Iterable[Path], zone: ZoneInfo, adjust: Adjust | None = None
) -> tuple[list[Located], list[Problem]]:
    located: list[Located] = []
    problems: list[Problem] = []
    for path in paths:
        data, lines, file_problems = _parse(path)
        if adjust is not None:
            data = adjust(data)
        broken = {problem.line for problem in file_problems if problem.line is not None}
        problems += file_problems
        for kind, entries in data.items():
            if kind not in RECORD_KINDS:
                known = ", ".join(RECORD_KINDS)
                message = f"unknown record kind {kind!r}; known kinds: {known}"
                problems.append(Problem(path, message, line=lines.get((kind,)), where=kind))
                continue
            if not isinstance(entries, list):
                message = f"must be a list of records ([[{kind}]] in TOML)"
                problems.append(Problem(path, message, line=lines.get((kind,)), where=kind))
                continue
            for index, entry in enumerate(entries):
                found, entry_problems = _validate(path, kind, index, entry, lines, zone)
                problems += [p for p in entry_problems if p.line not in broken]
                if found is not None:
                    located.append(found)
    problems += _duplicates(located)
    return located, problems


def _parse(path: Path) -> tuple[dict[str, Any], dict[KeyPath, int], list[Problem]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return {}, {}, [Problem(path, f"cannot read: {error}")]
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            return {}, {}, [Problem(path, f"JSON syntax error: {error.msg}", line=error.lineno)]
        except (ValueError, RecursionError) as error:  # a number too long, nesting too deep
            reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)
            return {}, {}, [Problem(path, f"JSON cannot be read: {reason}")]
        if not isinstance(data, dict):
            return {}, {}, [Problem(path, "expected an object with lists of records")]
        positions = json_positions(text)
        again = [
            Problem(path, f"{place[-1]!r} given twice (the last would count)", line=line,
                    where=format_path(place))
            for place, line in positions.again
        ]  # fmt: skip
        return data, positions.lines, again
    if path.suffix.lower() != ".toml":
        return {}, {}, [Problem(path, "a data file must be .toml or .json")]
    parsed = loads_tolerant(text)
    problems = [Problem(path, message, line=line) for line, message in parsed.syntax_errors]
    return parsed.data, parsed.lines, problems


def _validate(
    path: Path,
    kind: str,
    index: int,
    entry: Any,
    lines: dict[KeyPath, int],
    zone: ZoneInfo,
) -> tuple[Located | None, list[Problem]]:
    model = RECORD_KINDS[kind]
    line = lines.get((kind, index))
    identity = entry.get(model.natural_key) if isinstance(entry, dict) else None
    place = f"{kind}[{index}]" + (f" ({identity})" if isinstance(identity, str) else "")
    if not isinstance(entry, dict):
        return None, [Problem(path, "expected a record (a table)", line=line, where=place)]
    try:
        record = model.model_validate(entry, context={"zone": zone})
    except ValidationError as error:
        problems = []
        for detail in error.errors():
            loc = tuple(part for part in detail["loc"] if isinstance(part, str | int))
            field_line = line_of(lines, (kind, index, *loc)) or line
            problems.append(
                Problem(
                    path,
                    _explain(detail, loc, model),
                    line=field_line,
                    where=f"{place} {format_path(loc)}" if loc else place,
                )
            )
        return _placeholder(model, entry, path, kind, index, lines), problems
    return Located(record, path, kind, index, lines), []


def _placeholder(
    model: type[Record],
    entry: dict[str, Any],
    path: Path,
    kind: str,
    index: int,
    lines: dict[KeyPath, int],
) -> Located | None:
    """An invalid record still names itself and its references.

    So records that point to it get no false "dangling" error, and its own
    references are checked too. It is never written: it came with a problem.
    """
    names = {model.natural_key, *model.references}
    given = {name: entry[name] for name in names if _storable(entry.get(name))}
    if model.natural_key not in given or model is TouchpointRecord:
        return None
    return Located(model.model_construct(**given), path, kind, index, lines)


def _storable(value: Any) -> bool:
    """Whether `value` is text a database can be asked about (no NUL, no lone surrogate)."""
    if not isinstance(value, str) or "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _explain(detail: ErrorDetails, loc: KeyPath, model: type[Record]) -> str:
    """A pydantic error in the words of the config's: the bad value, a close field name."""
    if detail["type"] == "extra_forbidden":
        message = f"unknown field {loc[-1]!r}"
        known = _fields_at(model, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
        if close:
            return f"{message}; did you mean {close[0]!r}?"
        if not known:
            return message
        where = "record" if len(loc) == 1 else "table"  # a payment's table, inside its record
        return f"{message}; fields of this {where}: {', '.join(known)}"
    if detail["type"] == "missing":
        return "missing required field"
    message = str(detail["msg"])
    if detail["type"] == "value_error":  # our validators name the value themselves
        return message.removeprefix("Value error, ")
    shown = detail.get("input")
    if isinstance(shown, str | int | float | bool) and len(str(shown)) < 60:
        message += f" (got {shown!r})"
    return message


def _fields_at(model: type[BaseModel], loc: KeyPath) -> list[str]:
    """The fields of the record or nested table (a payment) at `loc` within `model`."""
    current: type[BaseModel] | None = model
    for part in loc:
        if isinstance(part, int):
            continue
        field_info = current.model_fields.get(str(part)) if current is not None else None
        current = None if field_info is None else model_in(field_info.annotation)
        if current is None:
            return []
    return [] if current is None else list(current.model_fields)


def _duplicates(located: list[Located]) -> list[Problem]:
    first: dict[tuple[str, str], Located] = {}
    problems = []
    for item in located:
        identity = (item.kind, item.record.identity())
        if identity in first:
            earlier = first[identity]
            seen = f"{earlier.file}:{earlier.line}" if earlier.line else str(earlier.file)
            problems.append(item.problem(f"the same record appears earlier, at {seen}"))
        else:
            first[identity] = item
    return problems


# -- references -------------------------------------------------------------------------


def _existing(session: Session, kind: str, keys: set[str]) -> dict[str, Any]:
    """The stored records of `kind` among `keys`, by natural key."""
    model: Any = MODELS[kind]
    column = getattr(model, RECORD_KINDS[kind].natural_key)
    found: dict[str, Any] = {}
    for chunk in chunked(sorted(keys)):
        for row in session.scalars(select(model).where(column.in_(chunk))):
            found[getattr(row, RECORD_KINDS[kind].natural_key)] = row
    return found


def check_references(
    session: Session, located: list[Located], owners: Collection[str] = (SINGLE_OWNER_KEY,)
) -> list[Problem]:
    """Every referenced key must exist in the files or in the store, an owner in `owners`.

    A mission's or touchpoint's contact must also belong to the mission's client.
    """
    in_files: dict[str, dict[str, Record]] = {kind: {} for kind in RECORD_KINDS}
    for item in located:
        in_files[item.kind][item.record.identity()] = item.record
    wanted: dict[str, set[str]] = {kind: set() for kind in RECORD_KINDS}
    for item in located:
        for field_name, kind in item.record.references.items():
            value = getattr(item.record, field_name, None)
            if value is not None and value not in in_files[kind]:
                wanted[kind].add(value)
    stored = {kind: _existing(session, kind, keys) for kind, keys in wanted.items() if keys}

    def client_of(kind: str, key: str) -> str | None:
        record = in_files[kind].get(key)
        if record is not None:
            client = getattr(record, "client", None)
            return None if client is None else str(client)
        row = stored.get(kind, {}).get(key)
        return None if row is None else str(row.client.key)

    problems = []
    for item in located:
        for field_name, kind in item.record.references.items():
            value = getattr(item.record, field_name, None)
            if value is None or value in in_files[kind] or value in stored.get(kind, {}):
                continue
            noun = kind.removesuffix("s")
            message = f"refers to {noun} {value!r}, which is neither in the files nor stored"
            problems.append(item.problem(message, field_name))
        owner = getattr(item.record, "owner", None)
        if owner is not None and owner not in owners:
            problems.append(item.problem(_unknown_owner(owner, owners), "owner"))
        contact = getattr(item.record, "contact", None)
        if item.kind in ("missions", "touchpoints") and contact is not None:
            mission_client = (
                getattr(item.record, "client", None)
                if item.kind == "missions"
                else client_of("missions", getattr(item.record, "mission", ""))
            )
            contact_client = client_of("contacts", contact)
            if None not in (mission_client, contact_client) and mission_client != contact_client:
                message = (
                    f"contact {contact!r} belongs to client {contact_client!r}, "
                    f"not to this mission's client {mission_client!r}"
                )
                problems.append(item.problem(message, "contact"))
    return problems


def _unknown_owner(owner: str, owners: Collection[str]) -> str:
    message = f"refers to owner {owner!r}, which is not in the config"
    close = difflib.get_close_matches(owner, list(owners), n=1)
    if close:
        return f"{message}; did you mean {close[0]!r}?"
    return f"{message} (owners: {', '.join(owners)})"


# -- writing ----------------------------------------------------------------------------


def apply(session: Session, located: list[Located]) -> ImportReport:
    """Upsert the checked records, kind by kind so that references resolve."""
    report = ImportReport()
    ids: dict[str, dict[str, int]] = {kind: {} for kind in RECORD_KINDS}
    for kind in RECORD_KINDS:
        items = [item for item in located if item.kind == kind]
        if not items:
            continue
        _load_referenced_ids(session, items, ids)
        existing = _existing(session, kind, {item.record.identity() for item in items})
        rows: dict[str, Any] = {}
        for item in items:
            identity = item.record.identity()
            row = existing.get(identity)
            values = _column_values(item.record, ids, new=row is None)
            if row is None:
                row = MODELS[kind](**values)
                session.add(row)
                report.created[kind] += 1
            elif _update(row, values):
                report.updated[kind] += 1
            else:
                report.unchanged[kind] += 1
            rows[identity] = row
        session.flush()
        ids[kind].update({identity: row.id for identity, row in rows.items()})
    return report


def _load_referenced_ids(
    session: Session, items: list[Located], ids: dict[str, dict[str, int]]
) -> None:
    """Fill `ids` with the stored records that `items` refer to and the files do not hold."""
    missing: dict[str, set[str]] = {}
    for item in items:
        for field_name, kind in item.record.references.items():
            value = getattr(item.record, field_name)
            if value is not None and value not in ids[kind]:
                missing.setdefault(kind, set()).add(value)
    for kind, keys in missing.items():
        ids[kind].update({key: row.id for key, row in _existing(session, kind, keys).items()})


def _column_values(record: Record, ids: dict[str, dict[str, int]], *, new: bool) -> dict[str, Any]:
    given = set(type(record).model_fields) if new else record.model_fields_set
    values: dict[str, Any] = {}
    for name in given:
        value = record.stored(name)
        if name in record.references:
            kind = record.references[name]
            values[REFERENCE_COLUMNS[name]] = None if value is None else ids[kind][value]
        else:
            values[name] = value
    if isinstance(record, TouchpointRecord):
        values["key"] = record.identity()
    return values


def _update(row: Any, values: dict[str, Any]) -> bool:
    changed = False
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    return changed
