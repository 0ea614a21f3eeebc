"""`followupd import` on both engines: upserts, all-or-nothing, every problem located."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import URL

from followupd.errors import DataError
from followupd.sources.files.importer import import_files
from followupd.store.db import Store
from followupd.store.models import Base, Contact, Invoice, Issue, Mission, Touchpoint
from followupd.store.updates import mark_invoice_paid
from tests.conftest import database_digest

PARIS = ZoneInfo("Europe/Paris")
DEMO = Path(__file__).parent.parent / "config" / "demo.toml"

BASE = """\
[[clients]]
key = "acme"
name = "ACME SA"

[[contacts]]
key = "jdupont"
client = "acme"
name = "Jeanne Dupont"
email = "jeanne.dupont@acme.example"

[[missions]]
key = "acme-audit"
client = "acme"
title = "Audit du SI"
contact = "jdupont"
start = 2026-09-01
end = 2026-12-15
deposit_amount = 3000

[[invoices]]
number = "F-2026-042"
mission = "acme-audit"
amount = 12000.00
issued = 2026-10-31
due = 2026-11-30
"""


def write(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


def snapshot(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to compare a database before and after."""
    with store.engine.connect() as connection:
        return {
            name: sorted(
                (tuple(row) for row in connection.execute(text(f'SELECT * FROM "{name}"'))),
                key=repr,
            )
            for name in Base.metadata.tables
        }


def test_demo_imports_and_a_second_import_changes_nothing(store: Store) -> None:
    first = import_files(store, [DEMO], PARIS)
    demo = tomllib.loads(DEMO.read_text(encoding="utf-8"))
    assert dict(first.created) == {kind: len(records) for kind, records in demo.items()}
    assert first.changes == sum(len(records) for records in demo.values())
    before = snapshot(store)
    second = import_files(store, [DEMO], PARIS)
    assert second.changes == 0
    assert sum(second.unchanged.values()) == first.changes
    assert snapshot(store) == before


def test_demo_covers_every_status_and_case(store: Store) -> None:
    import_files(store, [DEMO], PARIS)
    with store.session() as session:
        statuses = set(session.scalars(select(Mission.status)))
        languages = {c.language or c.client.language for c in session.scalars(select(Contact))}
        invoices = session.scalars(select(Invoice)).all()
        issues = session.scalars(select(Issue)).all()
    assert statuses == {"proposed", "active", "on_hold", "disputed", "closed"}
    assert languages == {"fr", "en"}
    today = date(2026, 11, 22)
    assert any(inv.paid for inv in invoices)
    assert any(not inv.paid and inv.due < today for inv in invoices)
    assert any(not inv.paid and inv.due >= today for inv in invoices)
    assert any(issue.resolved is None for issue in issues)


def test_bad_data_reports_every_problem_and_leaves_the_database_unchanged(
    store: Store, database_url: URL, tmp_path: Path
) -> None:
    import_files(store, [write(tmp_path, "base.toml", BASE)], PARIS)
    before = database_digest(database_url)
    sqlite_files = sqlite_with_log(database_url)
    sqlite_bytes = [path.read_bytes() if path.exists() else None for path in sqlite_files]

    bad = write(
        tmp_path,
        "bad.toml",
        BASE.replace('contact = "jdupont"', 'contact = "nobody"').replace(
            "due = 2026-11-30", 'due = "2026-11-31"'
        )
        + '\n[[clients]]\nkey = "newco"\nname = "New Co"\n',
    )
    with pytest.raises(DataError) as caught:
        import_files(store, [bad], PARIS)

    problems = caught.value.problems
    rendered = [str(problem) for problem in problems]
    assert len(problems) == 2, rendered
    dangling = next(p for p in problems if "nobody" in p.message)
    assert dangling.file == bad
    assert dangling.where == "missions[0] (acme-audit) contact"
    assert dangling.line == bad.read_text().splitlines().index('contact = "nobody"') + 1
    bad_date = next(p for p in problems if "date" in p.message)
    assert bad_date.where == "invoices[0] (F-2026-042) due"
    assert bad_date.line == bad.read_text().splitlines().index('due = "2026-11-31"') + 1
    assert database_digest(database_url) == before
    after = [path.read_bytes() if path.exists() else None for path in sqlite_files]
    assert after == sqlite_bytes, "not one byte written, not even to the write-ahead log"


def sqlite_with_log(url: URL) -> list[Path]:
    """The SQLite file at `url` and its write-ahead log; none for PostgreSQL."""
    if url.get_backend_name() != "sqlite":
        return []
    database = Path(url.database or "")
    return [database, database.with_name(database.name + "-wal")]


def test_one_bad_file_means_nothing_from_any_file(store: Store, tmp_path: Path) -> None:
    good = write(tmp_path, "good.toml", BASE)
    bad = write(tmp_path, "bad.json", json.dumps({"clients": [{"key": "x"}]}))
    before = snapshot(store)
    with pytest.raises(DataError) as caught:
        import_files(store, [good, bad], PARIS)
    assert [str(p) for p in caught.value.problems] == [
        f"{bad}:1: clients[0] (x) name: missing required field"
    ]
    assert snapshot(store) == before


def test_unknown_fields_and_kinds_are_errors(store: Store, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "typos.toml",
        BASE.replace('name = "ACME SA"', 'name = "ACME SA"\nlangage = "fr"')
        + '\n[[clientz]]\nkey = "z"\n',
    )
    with pytest.raises(DataError) as caught:
        import_files(store, [path], PARIS)
    messages = [str(p) for p in caught.value.problems]
    assert any("clients[0] (acme) langage: unknown field 'langage'" in m for m in messages)
    assert any("unknown record kind 'clientz'" in m for m in messages)


def test_json_and_toml_give_the_same_store(store: Store, tmp_path: Path) -> None:
    data = tomllib.loads(BASE)
    as_json = json.loads(json.dumps(data, default=str))
    import_files(store, [write(tmp_path, "base.json", json.dumps(as_json))], PARIS)
    assert import_files(store, [write(tmp_path, "base.toml", BASE)], PARIS).changes == 0


def test_updates_in_place_and_keeps_fields_left_out(store: Store, tmp_path: Path) -> None:
    import_files(store, [write(tmp_path, "base.toml", BASE)], PARIS)
    with store.session() as session:
        mark_invoice_paid(session, "F-2026-042", date(2026, 12, 2))
    changed = BASE.replace('title = "Audit du SI"', 'title = "Audit du système"')
    report = import_files(store, [write(tmp_path, "changed.toml", changed)], PARIS)
    assert dict(report.updated) == {"missions": 1}
    with store.session() as session:
        mission = session.scalars(select(Mission)).one()
        invoice = session.scalars(select(Invoice)).one()
    assert mission.title == "Audit du système"
    assert invoice.paid == date(2026, 12, 2), "re-importing the file must not undo `paid`"
    assert invoice.amount == Decimal("12000.00")


def test_json_null_clears_an_optional_field(store: Store, tmp_path: Path) -> None:
    import_files(store, [write(tmp_path, "base.toml", BASE)], PARIS)
    update = {"missions": [{"key": "acme-audit", "client": "acme", "title": "Audit du SI",
                            "start": "2026-09-01", "end": None}]}  # fmt: skip
    report = import_files(store, [write(tmp_path, "u.json", json.dumps(update))], PARIS)
    assert dict(report.updated) == {"missions": 1}
    with store.session() as session:
        assert session.scalars(select(Mission.end)).one() is None


@pytest.mark.parametrize("mission", ["\x00", "acme\x00audit", "\ud800"])
def test_a_reference_no_database_can_hold_is_a_data_error(
    store: Store, tmp_path: Path, mission: str
) -> None:
    """An invalid record's reference is looked up only if it is storable text (PostgreSQL
    refuses a NUL even in a query); the record's own problem is what is said."""
    issue = {"key": "late-data", "mission": mission, "opened": "2026-11-10T10:00:00+01:00",
             "severity": "high", "summary": "Extraction en retard"}  # fmt: skip
    path = write(tmp_path, "bad.json", json.dumps({"issues": [issue]}))
    with pytest.raises(DataError) as refused:
        import_files(store, [path], PARIS)
    (problem,) = refused.value.problems
    assert (problem.where or "").startswith("issues[0] (late-data) mission"), problem


def test_references_may_point_to_stored_records(store: Store, tmp_path: Path) -> None:
    import_files(store, [write(tmp_path, "base.toml", BASE)], PARIS)
    later = """\
[[issues]]
key = "late-data"
mission = "acme-audit"
opened = 2026-11-10T10:00:00
severity = "high"
summary = "Extraction des données client en retard"

[[touchpoints]]
mission = "acme-audit"
contact = "jdupont"
kind = "call"
at = 2026-11-14T16:00:00+01:00
"""
    report = import_files(store, [write(tmp_path, "later.toml", later)], PARIS)
    assert dict(report.created) == {"issues": 1, "touchpoints": 1}
    with store.session() as session:
        issue = session.scalars(select(Issue)).one()
        touchpoint = session.scalars(select(Touchpoint)).one()
        contact_key = touchpoint.contact.key if touchpoint.contact else None
    # a time without an offset is read in the owner's zone (Paris, UTC+1 in November)
    assert issue.opened == datetime(2026, 11, 10, 9, 0, tzinfo=UTC)
    assert contact_key == "jdupont"
    assert import_files(store, [tmp_path / "later.toml"], PARIS).changes == 0


def test_a_contact_of_another_client_is_refused(store: Store, tmp_path: Path) -> None:
    other = BASE + '\n[[clients]]\nkey = "globex"\nname = "Globex"\n'
    other = other.replace('key = "jdupont"\nclient = "acme"', 'key = "jdupont"\nclient = "globex"')
    with pytest.raises(DataError, match="belongs to client 'globex'"):
        import_files(store, [write(tmp_path, "other.toml", other)], PARIS)


def test_duplicates_across_files_are_refused(store: Store, tmp_path: Path) -> None:
    first = write(tmp_path, "a.toml", BASE)
    second = write(tmp_path, "b.toml", '[[clients]]\nkey = "acme"\nname = "Autre"\n')
    with pytest.raises(DataError, match=r"appears earlier, at .*a\.toml:1"):
        import_files(store, [first, second], PARIS)


@pytest.mark.parametrize(
    ("field_line", "expected"),
    [
        ("amount = 12000.001", "decimal places"),
        ("amount = -5", "greater than or equal to 0"),
        ("amount = true", "expected an amount"),
        ("issued = 20261031", "expected a date"),
        ("issued = 2026-10-31T10:00:00", "without a time"),
        ("due = 2026-10-01", "before issued"),
    ],
)
def test_field_values_are_checked(
    store: Store, tmp_path: Path, field_line: str, expected: str
) -> None:
    name = field_line.split(" = ")[0]
    original = {"amount": "amount = 12000.00", "issued": "issued = 2026-10-31",
                "due": "due = 2026-11-30"}[name]  # fmt: skip
    path = write(tmp_path, "v.toml", BASE.replace(original, field_line))
    with pytest.raises(DataError, match=expected) as caught:
        import_files(store, [path], PARIS)
    assert caught.value.problems[0].where is not None
    assert caught.value.problems[0].where.startswith("invoices[0] (F-2026-042)")


def test_syntax_errors_are_listed_with_lines(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "s.toml", BASE.replace('name = "ACME SA"', "name = ACME SA"))
    with pytest.raises(DataError) as caught:
        import_files(store, [path], PARIS)
    syntax = [p for p in caught.value.problems if "syntax" in p.message]
    assert [p.line for p in syntax] == [3]


def test_an_invalid_record_still_counts_as_present_for_references(
    store: Store, tmp_path: Path
) -> None:
    """A mission with a bad date must not also make its invoice look dangling."""
    path = write(tmp_path, "m.toml", BASE.replace("start = 2026-09-01", "start = 2026-09-31"))
    with pytest.raises(DataError) as caught:
        import_files(store, [path], PARIS)
    messages = [str(p) for p in caught.value.problems]
    assert len(messages) == 1, messages
    line = path.read_text().splitlines().index("start = 2026-09-31") + 1
    assert (
        messages[0]
        == f"{path}:{line}: start: invalid date 2026-09-31: day is out of range for month"
    )


def test_references_of_an_invalid_record_are_checked_too(store: Store, tmp_path: Path) -> None:
    broken = BASE.replace('mission = "acme-audit"\namount = 12000.00',
                          'mission = "ghost"\namount = "lots"')  # fmt: skip
    path = write(tmp_path, "i.toml", broken)
    with pytest.raises(DataError) as caught:
        import_files(store, [path], PARIS)
    wheres = sorted(p.where or "" for p in caught.value.problems)
    assert wheres == ["invoices[0] (F-2026-042) amount", "invoices[0] (F-2026-042) mission"]


def test_type_and_choice_errors_show_the_bad_value(store: Store, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "values.toml",
        BASE.replace('title = "Audit du SI"', 'title = 42\nstatus = "actve"'),
    )
    with pytest.raises(DataError) as caught:
        import_files(store, [path], PARIS)
    assert [p.message for p in caught.value.problems] == [
        "Input should be a valid string (got 42)",
        "Input should be 'proposed', 'active', 'on_hold', 'disputed' or 'closed' (got 'actve')",
    ]


def test_an_unknown_field_of_a_payment_names_the_payments_fields(
    store: Store, tmp_path: Path
) -> None:
    typo = BASE + "payments = [{ on = 2026-11-15, amout = 4000 }]\n"
    far = BASE + "payments = [{ on = 2026-11-15, amount = 4000, via = 'wire' }]\n"
    with pytest.raises(DataError) as caught:
        import_files(store, [write(tmp_path, "typo.toml", typo)], PARIS)
    assert [str(p) for p in caught.value.problems if "unknown field" in p.message] == [
        f"{tmp_path / 'typo.toml'}:26: invoices[0] (F-2026-042) payments[0].amout: "
        "unknown field 'amout'; did you mean 'amount'?"
    ]
    with pytest.raises(DataError) as caught:
        import_files(store, [write(tmp_path, "far.toml", far)], PARIS)
    assert [p.message for p in caught.value.problems] == [
        "unknown field 'via'; fields of this table: on, amount"
    ]


def test_the_problems_of_a_file_come_in_line_order(store: Store, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "order.toml",
        BASE.replace('client = "acme"\nname = "Jeanne', 'client = "acmee"\nname = "Jeanne').replace(
            "amount = 12000.00", 'amount = "lots"'
        ),
    )
    with pytest.raises(DataError) as caught:
        import_files(store, [path], PARIS)
    assert [(p.line, p.where) for p in caught.value.problems] == [
        (7, "contacts[0] (jdupont) client"),
        (15, "missions[0] (acme-audit) contact"),
        (23, "invoices[0] (F-2026-042) amount"),
    ]


def test_the_problems_of_a_json_file_come_in_record_order(store: Store, tmp_path: Path) -> None:
    contacts = [{"key": "a", "client": "nobody", "name": "A"}, {"key": "b", "client": "nobody"}]
    path = write(tmp_path, "order.json", json.dumps({"contacts": contacts}))
    with pytest.raises(DataError) as caught:
        import_files(store, [path], PARIS)
    assert [p.where for p in caught.value.problems] == [
        "contacts[0] (a) client",
        "contacts[1] (b) name",
        "contacts[1] (b) client",
    ]


def with_phone(tmp_path: Path, phone: str) -> Path:
    """The base data file, its contact's phone written as `phone`."""
    email = 'email = "jeanne.dupont@acme.example"'
    return write(tmp_path, "phone.toml", BASE.replace(email, f'{email}\nphone = "{phone}"'))


@pytest.mark.parametrize("phone", ["call me maybe", "+33 6 12 34 56 78 ext. 4", "12", "++33 6"])
def test_a_contact_phone_that_is_no_number_is_refused_with_its_line(
    store: Store, tmp_path: Path, phone: str
) -> None:
    path = with_phone(tmp_path, phone)
    with pytest.raises(DataError) as caught:
        import_files(store, [path], PARIS)
    [problem] = caught.value.problems
    assert problem.where == "contacts[0] (jdupont) phone"
    assert problem.line == path.read_text().splitlines().index(f'phone = "{phone}"') + 1
    assert "expected a phone number like '+33 6 12 34 56 78'" in problem.message


@pytest.mark.parametrize("phone", ["+33 6 12 34 56 78", "(212) 555-0100", "06.12.34.56.78",
                                   "+44 20/7946 0958"])  # fmt: skip
def test_phone_numbers_as_people_write_them_are_imported(
    store: Store, tmp_path: Path, phone: str
) -> None:
    import_files(store, [with_phone(tmp_path, phone)], PARIS)
    with store.session() as session:
        assert session.scalars(select(Contact.phone)).all() == [phone]


def test_a_json_file_s_problems_name_their_line(store: Store, tmp_path: Path) -> None:
    records = {"clients": [{"key": "acme", "name": "ACME"}, {"key": "b", "name": 42}]}
    path = write(tmp_path, "bad.json", json.dumps(records, indent=2))
    with pytest.raises(DataError) as caught:
        import_files(store, [path], PARIS)
    [problem] = caught.value.problems
    assert problem.where == "clients[1] (b) name"
    assert problem.line == path.read_text().splitlines().index('      "name": 42') + 1


def test_a_json_record_with_a_field_given_twice_is_refused(store: Store, tmp_path: Path) -> None:
    """As in TOML: json.loads would keep the last value without a word."""
    text = '{"clients": [\n  {"key": "acme",\n   "name": "ACME",\n   "name": "ACME SA"}\n]}\n'
    path = write(tmp_path, "twice.json", text)
    with pytest.raises(DataError) as caught:
        import_files(store, [path], PARIS)
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:4: clients[0].name: 'name' given twice (the last would count)"
    ]


def test_an_impossible_date_in_json_says_which_figure_is_wrong(
    store: Store, tmp_path: Path
) -> None:
    mission = {"key": "m1", "client": "acme", "title": "T", "start": "2026-13-01"}
    records = {"clients": [{"key": "acme", "name": "ACME"}], "missions": [mission]}
    path = write(tmp_path, "date.json", json.dumps(records, indent=1))
    with pytest.raises(DataError) as caught:
        import_files(store, [path], PARIS)
    [problem] = caught.value.problems
    assert problem.where == "missions[0] (m1) start"
    assert problem.message == "invalid date 2026-13-01: month must be in 1..12"
