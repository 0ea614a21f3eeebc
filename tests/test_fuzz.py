"""Fuzzing the readers of outside input: config files, data files and calendar objects.

Whatever they are given, each reader ends in success or in its documented error:

- the config loader gives settings, or ConfigError (exit 78) whose every problem
  names the file, and a line within it when it names one; `followupd check
  --offline` exits 0 or 78, never with a traceback, and writes nothing;
- the importer gives a report, or DataError (exit 65) whose every problem names
  one of the files; after a DataError the SQLite file is byte for byte what it
  was, and after a success importing the same files again changes nothing;
- the CalDAV reader gives a ReadObject, or UnreadableObject with a reason (the
  sync skips the object with it); what it reads holds aware times and no control
  characters, and the mission conventions never raise on it.

Inputs are valid seeds (the example config, demo.toml, tests/fuzz_corpus/*.ics)
changed value by value, line by line and byte by byte, and some wholly random
text and bytes. Each kind of input runs 2,000 examples from a fixed seed
(``derandomize=True``), the command line 50. FOLLOWUPD_FUZZ_EXAMPLES=N runs N
instead, fewer or more: 20 for a quick look while working (the file in about
a minute and a half instead of fifteen), 20000 to search further. The module
is marked slow (see tests/run). An example that runs longer than
STALL_SECONDS fails: a reader must not hang on what it reads. The
``@example`` cases pin the inputs that once broke a reader, and always run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import tomllib
import traceback
import typing
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from copy import deepcopy
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from sqlalchemy import Engine, String, create_engine, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker

import followupd
from followupd.config.load import load_settings, parse_settings
from followupd.config.settings import Settings
from followupd.errors import EX_CONFIG, EX_DATAERR, ConfigError, DataError, ProblemsError
from followupd.sources.caldav import conventions
from followupd.sources.files.importer import import_files
from followupd.sources.files.records import RECORD_KINDS, MissionRecord, TouchpointRecord
from followupd.sources.ical.happenings import Happening, ReadObject, UnreadableObject
from followupd.sources.ical.read import MAX_OCCURRENCES, read_object
from followupd.store.db import Store
from followupd.store.models import Base
from tests.conftest import ENGINES, MINIMAL_CONFIG, RunCli, fresh_postgres_database, rows_digest

pytestmark = pytest.mark.slow  # minutes at the default number of examples


def examples_asked(default: int = 2000) -> int:
    """FOLLOWUPD_FUZZ_EXAMPLES, a whole number of at least 1; `default` when unset."""
    asked = os.environ.get("FOLLOWUPD_FUZZ_EXAMPLES", "").strip()
    if not asked:
        return default
    if not asked.isdigit() or int(asked) < 1:
        raise pytest.UsageError(f"FOLLOWUPD_FUZZ_EXAMPLES={asked!r}: give a whole number >= 1")
    return int(asked)


EXAMPLES = examples_asked()
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,  # the same examples on every run, in CI and here
    database=None,  # nothing saved between runs: a derandomized run replays by itself
    deadline=None,  # STALL_SECONDS bounds an example instead
    print_blob=False,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,  # the tests reset what their examples share
    ],
)
CLI_EXAMPLES = min(50, EXAMPLES)  # each one runs `followupd check` as a process
T = TypeVar("T")
STALL_SECONDS = 10.0

PACKAGE = str(Path(followupd.__file__).parent)
RESOURCES = Path(PACKAGE) / "resources"
CORPUS = Path(__file__).parent / "fuzz_corpus"
EXAMPLE_CONFIG = (RESOURCES / "followupd.example.toml").read_text(encoding="utf-8")
DEMO_TEXT = (RESOURCES / "demo.toml").read_text(encoding="utf-8")
DEMO: dict[str, list[dict[str, Any]]] = tomllib.loads(DEMO_TEXT)
ICS_SEEDS = {path.name: path.read_text(encoding="utf-8") for path in sorted(CORPUS.glob("*.ics"))}
ZONES = ["Europe/Paris", "UTC", "Pacific/Kiritimati", "America/St_Johns", "Pacific/Niue"]


def one_in(n: int) -> st.SearchStrategy[bool]:
    """True about once in `n` draws; False is what a failing example shrinks to."""
    return st.integers(0, n - 1).map(lambda drawn: drawn == n - 1)


ONE_IN_2, ONE_IN_4, ONE_IN_6, ONE_IN_10, ONE_IN_20 = map(one_in, (2, 4, 6, 10, 20))


# -- guarding against hangs ---------------------------------------------------------------


class Stalled(Exception):
    """Raised by the alarm into whatever runs too long."""


@contextmanager
def stall_guard(what: str) -> Iterator[None]:
    """Fail when the block runs longer than STALL_SECONDS, even if it swallows the alarm."""
    fired: list[bool] = []

    def alarm(_signum: int, _frame: FrameType | None) -> None:
        fired.append(True)
        raise Stalled(f"{what} still running after {STALL_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, STALL_SECONDS)
    try:
        yield
    except Stalled:
        pass
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    if fired:  # raised out of the reader, or caught by it and carried on
        raise AssertionError(f"{what} stalled: still running after {STALL_SECONDS} s")


def guarded(what: str, call: Callable[[], T]) -> T:
    """Run a reader: an exception it is not documented to raise fails the example, tersely.

    One message from one place, raised once the exception is handled, so that
    Hypothesis sees the same failure on every replay (a RecursionError, say, comes
    from another line each time) and does not print a traceback thousands deep.
    """
    with stall_guard(what):
        try:
            return call()
        except (AssertionError, Stalled):
            raise
        except Exception as error:
            frames = traceback.extract_tb(error.__traceback__)
            ours = [frame for frame in frames if frame.filename.startswith(PACKAGE)] or frames
            where = f"{Path(ours[-1].filename).name}:{ours[-1].lineno} in {ours[-1].name}"
            unexpected = f"{type(error).__name__}: {str(error)[:300]} (raised in {where})"
    raise AssertionError(f"{what} raised {unexpected}")


# -- values, as TOML and JSON write them --------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """A value written as is: what no Python value renders to (huge numbers, deep nesting)."""

    toml: str
    json: str


DEEP = 3000  # deeper than Python's recursion limit, which the parsers recurse into
RAWS = [
    Raw("9" * 5000, "9" * 5000),  # more digits than int() converts by default
    Raw("-" + "1" * 4400, "-" + "1" * 4400),
    Raw("1" + "0" * 400 + ".5", "1" + "0" * 400 + ".5"),
    Raw("1e400", "1e400"),
    Raw("-1e400", "-1e400"),
    Raw("1e-400", "1e-400"),
    Raw("nan", "NaN"),
    Raw("inf", "Infinity"),
    Raw("-inf", "-Infinity"),
    Raw("0x7fffffffffffffffff", '"0x7f"'),
    Raw("1_000", "1000"),
    Raw("[" * DEEP + "]" * DEEP, "[" * DEEP + "]" * DEEP),
    Raw("{a = " * DEEP + "1" + "}" * DEEP, '{"a": ' * DEEP + "1" + "}" * DEEP),
    Raw("[" * 60 + "1" + "]" * 60, "[" * 60 + "1" + "]" * 60),
    Raw("0001-01-01T00:00:00+14:00", '"0001-01-01T00:00:00+14:00"'),
    Raw("9999-12-31T23:59:59-14:00", '"9999-12-31T23:59:59-14:00"'),
    Raw("9999-12-31T23:59:59.999999Z", '"9999-12-31T23:59:59.999999Z"'),
    Raw("0001-01-01", '"0001-01-01"'),
    Raw("9999-12-31", '"9999-12-31"'),
    Raw("2026-02-29", '"2026-02-29"'),
    Raw("00:00:00", '"00:00:00"'),
    Raw("1979-05-27 07:32:00", '"1979-05-27 07:32:00"'),
]
NASTY_TEXTS = [
    *("", " ", "\t", "a\nb", "a\r\nb", "a\rb", "\x00", "nul\x00inside", "\x07\x1b[31mred"),
    *("\x7f\x85\u2028\u2029", "\ud800", "lone \udfff surrogate", "\ufeff", "\u202eevil"),
    *("Z\u0351\u0352\u0353algo", "🚀" * 50, "会议", "x" * 10_000, "[/]", "[bold]markup[/bold]"),
    *("%s%n{0}{{}}", "'; DROP TABLE clients; --", "../../etc/passwd", "/", "nobody", "acme"),
    *("a@b", "claire@cabinet.example", "Claire <claire@cabinet.example>", "mailto:x@y.z"),
    *("Europe/Paris", "Mars/Olympus_Mons", "../../../../etc/localtime", "fr", "EN", "FR", "xx"),
    *("EUR", "eur", "12000.00", "1e999999", "-0", "0.001", "NaN", "Infinity", "true"),
    *("2026-02-30", "2026-13-01", "2026-1-1", "+002026-01-01", "20261201", "2026-11-10T10:00:00"),
    *("2026-11-10T10:00:00+25:00", "2026-11-10T25:00:00Z", "0001-01-01T00:00:00+14:00"),
    *("9999-12-31T23:59:59-14:00", "active", "closed", "meeting", "critical"),
]
EDGE_INTS = [0, -1, 1, 7, 365, 366, 65536, 2**31, 2**63 - 1, 2**63, -(2**63) - 1, 10**30]
INSTANT_ZONES = [
    UTC,
    timezone(timedelta(hours=14)),
    timezone(-timedelta(hours=14)),
    timezone(timedelta(hours=5, minutes=45)),
    ZoneInfo("Europe/Paris"),
    ZoneInfo("Pacific/Kiritimati"),
]
SCALARS: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from(EDGE_INTS),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(NASTY_TEXTS),
    st.dates(),
    st.datetimes(timezones=st.sampled_from(INSTANT_ZONES)),
    st.datetimes(),
    st.times(),
    st.decimals(allow_nan=False, allow_infinity=False, places=3),
    st.sampled_from(RAWS),
)
# any value a TOML or JSON file can hold, edge cases first
NASTY_VALUES: st.SearchStrategy[Any] = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.text(max_size=6), SCALARS, max_size=3),
)
BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def toml_string(text: str) -> str:
    out = []
    for char in text:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif code < 0x20 or code == 0x7F or 0xD800 <= code <= 0xDFFF:
            out.append(f"\\u{code:04X}")  # a surrogate escape is a TOML error: so be it
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def toml_key(key: str) -> str:
    return key if BARE_KEY.fullmatch(key) else toml_string(key)


def toml_value(value: Any) -> str:
    if isinstance(value, Raw):
        return value.toml
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value if item is not None) + "]"
    if isinstance(value, dict):
        pairs = [f"{toml_key(str(k))} = {toml_value(v)}" for k, v in value.items() if v is not None]
        return "{" + ", ".join(pairs) + "}"
    return toml_string(str(value))


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def toml_document(data: dict[str, Any]) -> str:
    """A TOML text for `data`: values first, then tables and arrays of tables."""
    lines: list[str] = []

    def body(path: tuple[str, ...], table: dict[str, Any]) -> None:
        for key, value in table.items():
            if value is not None and not isinstance(value, dict) and not _is_table_array(value):
                lines.append(f"{toml_key(key)} = {toml_value(value)}")
        for key, value in table.items():
            name = ".".join(toml_key(part) for part in (*path, key))
            if isinstance(value, dict):
                lines.extend(["", f"[{name}]"])
                body((*path, key), value)
            elif _is_table_array(value):
                for entry in value:
                    lines.extend(["", f"[[{name}]]"])
                    body((*path, key), entry)

    body((), data)
    return "\n".join(lines) + "\n"


def json_value(value: Any) -> str:
    if isinstance(value, Raw):
        return value.json
    if value is None or isinstance(value, bool | int | float):
        return json.dumps(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, str):
        surrogates = any(0xD800 <= ord(char) <= 0xDFFF for char in value)
        return json.dumps(value, ensure_ascii=surrogates)  # escaped, they survive encoding
    if isinstance(value, datetime | date | time):
        return json.dumps(value.isoformat())
    if isinstance(value, list):
        return "[" + ", ".join(json_value(item) for item in value) + "]"
    if isinstance(value, dict):
        pairs = [f"{json_value(str(k))}: {json_value(v)}" for k, v in value.items()]
        return "{" + ", ".join(pairs) + "}"
    return json_value(str(value))


# -- changes to a text, and how it becomes bytes ------------------------------------------


@dataclass(frozen=True)
class Change:
    """One change to a text, `at` a line or a character (taken modulo the length)."""

    what: str
    at: int
    payload: str = ""

    def apply(self, text: str) -> str:
        lines = text.split("\n")
        line = self.at % len(lines)
        end = "\r" if lines[line].endswith("\r") else ""  # a CRLF text stays one
        if self.what == "delete-line":
            del lines[line]
        elif self.what == "duplicate-line":
            lines.insert(line, lines[line])
        elif self.what == "swap-lines":
            after = (line + 1) % len(lines)
            lines[line], lines[after] = lines[after], lines[line]
        elif self.what == "insert-line":
            lines.insert(line, self.payload + end)
        elif self.what == "replace-line":
            lines[line] = self.payload + end
        elif self.what == "replace-value":  # of `key = value` (TOML) or `NAME;PARAM=X:value`
            match = re.match(r"^([^=]*=\s*|[^:]*:)", lines[line])
            lines[line] = (match.group(1) if match else lines[line] + " = ") + self.payload + end
        elif self.what == "uncomment":  # the example config is mostly commented-out options
            commented = [n for n, text in enumerate(lines) if text.lstrip().startswith("#")]
            if commented:
                target = commented[self.at % len(commented)]
                lines[target] = re.sub(r"^\s*#+ ?", "", lines[target])
        elif self.what == "insert-text":
            position = self.at % (len(text) + 1)
            return text[:position] + self.payload + text[position:]
        elif self.what == "delete-text":
            position = self.at % (len(text) + 1)
            return text[:position] + text[position + 1 + len(self.payload) % 8 :]
        elif self.what == "truncate":
            return text[: self.at % (len(text) + 1)]
        elif self.what == "line-endings":
            return text.replace("\r\n", "\n").replace("\n", ("\r\n", "\r", "\n")[self.at % 3])
        return "\n".join(lines)


LINE_CHANGES = ["delete-line", "duplicate-line", "swap-lines", "insert-line", "replace-line"]
CHANGES = [*LINE_CHANGES, "replace-value", "insert-text", "delete-text", "truncate"]
POSITIONS = st.integers(min_value=0, max_value=1 << 20)


def changes(
    payloads: st.SearchStrategy[str], kinds: Sequence[str], most: int
) -> st.SearchStrategy[list[Change]]:
    change = st.builds(Change, what=st.sampled_from(list(kinds)), at=POSITIONS, payload=payloads)
    return st.lists(change, max_size=most)


def apply_all(text: str, edits: Sequence[Change]) -> str:
    for edit in edits:
        text = edit.apply(text)
    return text


@dataclass(frozen=True)
class Encoding:
    """How a text becomes bytes: a codec, then some bytes put in at a place."""

    codec: str = "utf-8"
    insert: bytes = b""
    at: int = 0

    def encode(self, text: str) -> bytes:
        if self.codec == "utf-8":
            data = text.encode("utf-8", errors="surrogatepass")  # a lone surrogate: bad UTF-8
        else:
            data = text.encode(self.codec, errors="replace")
        position = self.at % (len(data) + 1)
        return data[:position] + self.insert + data[position:]


ODD_ENCODINGS = st.builds(
    Encoding,
    codec=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252", "latin-1"]),
    insert=st.one_of(
        st.sampled_from([b"\xff", b"\x00", b"\xc3", b"\xe2\x82", b"\xef\xbb\xbf", b"\r"]),
        st.binary(max_size=8),
    ),
    at=POSITIONS,
)
# UTF-8 most of the time, as the files and objects followupd reads are
PLAIN = st.just(Encoding())
ENCODINGS = ONE_IN_6.flatmap(lambda odd: ODD_ENCODINGS if odd else PLAIN)


def decoded(data: bytes) -> str | None:
    """The text `Path.read_text(encoding="utf-8")` reads: universal newlines, BOM kept."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def assert_problems(error: ProblemsError, files: dict[Path, str | None]) -> None:
    """Every problem names one of `files` and says what is wrong, at a line within it."""
    assert error.problems, "an error with no problem in it"
    assert "Traceback" not in str(error)
    for problem in error.problems:
        assert problem.file in files, problem
        assert isinstance(problem.message, str) and problem.message.strip(), problem
        assert problem.where is None or isinstance(problem.where, str), problem
        text = files[problem.file]
        if problem.line is not None:
            assert problem.line >= 1, problem
            if text is not None:
                assert problem.line <= text.count("\n") + 1, problem


def assert_fits(table: str, column: str, value: object) -> None:
    """`value` can be stored in `table.column` on PostgreSQL too: not too long, no NUL.

    SQLite stores any text in any column; PostgreSQL refuses what exceeds a
    VARCHAR(n) and any NUL, and a refused statement is a traceback, not exit 65.
    """
    if not isinstance(value, str):
        return
    room = getattr(Base.metadata.tables[table].c[column].type, "length", None)
    assert "\x00" not in value, f"{table}.{column} gets a NUL, which PostgreSQL refuses"
    assert room is None or len(value) <= room, (
        f"{table}.{column} gets {len(value)} characters: PostgreSQL takes {room}"
    )


REPEATED = re.compile(r"(.{1,8}?)\1{7,}", re.DOTALL)
MAX_SHOWN = 20_000


def compact(value: str | bytes) -> str:
    """`value` as a Python expression, what repeats written as ``"[" * 5000``; cut if huge."""
    text = value.decode("latin-1") if isinstance(value, bytes) else value

    def shown(chunk: str) -> str:
        return repr(chunk.encode("latin-1")) if isinstance(value, bytes) else repr(chunk)

    parts, position = [], 0
    for match in REPEATED.finditer(text):
        if len(match.group(0)) < 32:
            continue
        if match.start() > position:
            parts.append(shown(text[position : match.start()]))
        unit = match.group(1)
        parts.append(f"{shown(unit)} * {len(match.group(0)) // len(unit)}")
        position = match.end()
    if position < len(text) or not parts:
        parts.append(shown(text[position:]))
    expression = " + ".join(parts)
    if len(expression) > MAX_SHOWN:  # Hypothesis warns about (so fails on) huge reprs
        return f"{expression[:MAX_SHOWN]} ... ({len(expression) - MAX_SHOWN} characters more)"
    return expression


class ShownCompactly:
    """How Hypothesis shows a failing input: short, and pasteable into an @example."""

    def _repr_pretty_(self, printer: Any, _cycle: bool) -> None:
        printer.text(repr(self))


# -- the config ---------------------------------------------------------------------------

# every section and option the config accepts, with the TOML they may hold
FULL_CONFIG = """\
[owner]
name = "Claire Martin"
email = "claire@cabinet.example"
phone = "+33 6 00 00 00 00"
timezone = "Europe/Paris"
language = "fr"
country = "FR"
reminders_by_email = "digest"

[database]
url = "postgresql://followupd@db.example.net/followupd"
password_env = "FOLLOWUPD_FUZZ_UNSET_PASSWORD"

[smtp]
host = "smtp.example.net"
port = 587
security = "starttls"
username = "claire"
password_file = "smtp.secret"
from = "Claire Martin <claire@cabinet.example>"
timeout_seconds = 60
rate_per_minute = 60
ca_file = "/etc/ssl/private-ca.pem"

[caldav]
url = "https://dav.example.net/"
username = "claire"
password_env = "FOLLOWUPD_FUZZ_UNSET_PASSWORD"
read_calendars = ["Missions", "Rendez-vous"]
write_calendar = "followupd"

[feed]
listen = "[::1]:8731"
token_file = "feed.token"

[service]
sync_every_seconds = 300
evaluate_every_seconds = 900
housekeeping_every_seconds = 3600
retention_days = 400
drain_seconds = 20

[business]
send_window = "09:00-24:00"
working_days = ["mon", "tue", "wed", "thu", "fri", "sat"]

[templates]

[rules.invoice_due]
enabled = true
grace_days = 7
steps = [
  { name = "heads-up", offset_days = -3, audience = "owner" },
  { name = "nudge-1", offset_days = 1, audience = "client" },
]

[rules.deposit_due]
steps = [{ name = "request", offset_days = 0, audience = "client" }]

[rules.contract_missing]
days_before_start = 7
every_days = 7

[rules.escalate_by_phone]
severities = ["high", "critical"]
after_working_days = 1
invoice_overdue_days = 30

[rules.client_not_informed]
after_working_days = 2
every_working_days = 2

[rules.status_update_due]
every_days = 14

[rules.checkpoint_meeting]
open_issues = 2
every_days = 30

[rules.mission_closeout]
after_working_days = 1

[rules.open_ended_mission]
max_months = 6
every_days = 90

[rules.new_year_greetings]
enabled = false
lookback_months = 24
last_day = 31
"""
CONFIG_SEEDS = [EXAMPLE_CONFIG, MINIMAL_CONFIG, FULL_CONFIG]


def _config_sections() -> dict[str, list[str]]:
    """The keys of every table of the config, by dotted table name ("" for the top)."""
    found = {"": list(Settings.model_fields)}
    for name, info in Settings.model_fields.items():
        for model in (info.annotation, *typing.get_args(info.annotation)):
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                continue
            found[name] = [field.alias or key for key, field in model.model_fields.items()]
            if name == "rules":
                for rule, options in model.model_fields.items():
                    annotation = options.annotation
                    assert isinstance(annotation, type) and issubclass(annotation, BaseModel)
                    found[f"rules.{rule}"] = list(annotation.model_fields)
    return found


CONFIG_SECTIONS = _config_sections()
CONFIG_VALUES = [
    *("sqlite:///followupd.db", "sqlite:///:memory:", "sqlite://", "sqlite:////abs/followupd.db"),
    *("postgresql://followupd@db.example.net/followupd", "postgresql://u:secret@h/d"),
    *("postgresql://u@h:port/d", "mysql://h/d", "not a url", "https://dav.example.net/"),
    *("http://dav.example.net/", "http://127.0.0.1:5232/", "http://[::1]:5232/", "http://[::1"),
    *("https://a:b@[zz]/", "https://", "127.0.0.1:8731", "[::1]:8731", "localhost:0"),
    *("host:99999", "09:00-18:00", "18:00-09:00", "00:00-24:00", "24:00-24:00", "9-18"),
    *("starttls", "tls", "none", "owner", "client", "heads-up", "Heads Up", "mon", "sun"),
    *("monday", "relative/dir", ".", "digest", "each", "off"),
    *("imaps://imap.example.net/", "imap://127.0.0.1:1143/", "imap://[::1", "imaps://u:p@h/"),
    *("INBOX", "inbox", "point d'(avancement", ".*", "compte[- ]rendu"),
]


@dataclass(frozen=True)
class ConfigEdit:
    """Set `key` of the table `section` (dotted, "" for the top) to `value`."""

    section: str
    key: str
    value: Any

    def apply(self, data: dict[str, Any]) -> None:
        table: Any = data
        for part in filter(None, self.section.split(".")):
            if not isinstance(table, dict):
                return
            if not isinstance(table.get(part), dict):
                table[part] = {}
            table = table[part]
        if isinstance(table, dict):
            table[self.key] = self.value


CONFIG_KEYS = {
    section: st.sampled_from(keys) | st.text(max_size=8)
    for section, keys in CONFIG_SECTIONS.items()
}
CONFIG_EDIT_VALUES = st.one_of(
    NASTY_VALUES,
    st.sampled_from(CONFIG_VALUES),
    st.lists(st.sampled_from(CONFIG_VALUES), max_size=3),
)
CONFIG_EDITS = (st.sampled_from(sorted(CONFIG_SECTIONS)) | st.text(max_size=8)).flatmap(
    lambda section: st.builds(
        ConfigEdit,
        st.just(section),
        CONFIG_KEYS.get(section, st.text(max_size=8)),
        CONFIG_EDIT_VALUES,
    )
)
CONFIG_LINES = [
    *("[owner]", "[smtp]", "[caldav]", "[database]", "[rules.invoice_due]", "[rules.nope]"),
    *("[[rules.invoice_due.steps]]", "[owner.name]", "name = 1", 'email = "nobody"'),
    *('password_env = "X"', 'password_file = "no-such-secret"', "a.b.c = 1", '"quoted" = 1'),
    *("owner = 3", "=", "[", "]]", '"""', "'''", 'key = """', "#", "x = [1, 2,"),
    "x = {a = 1, a = 2}",
]
CONFIG_PAYLOADS = st.one_of(
    st.sampled_from(CONFIG_LINES),
    st.sampled_from(CONFIG_VALUES).map(toml_string),
    NASTY_VALUES.map(toml_value),
    st.text(max_size=30),
)
CONFIG_CHANGES = changes(CONFIG_PAYLOADS, [*CHANGES, "line-endings", *["uncomment"] * 4], 6)


@dataclass(frozen=True, repr=False)
class ConfigCase(ShownCompactly):
    text: str
    data: bytes

    def __repr__(self) -> str:
        return f"ConfigCase({compact(self.text)}, {compact(self.data)})"


@st.composite
def config_cases(draw: st.DrawFn) -> ConfigCase:
    """A config file: a seed edited by key and by line, or random text; then encoded."""
    if draw(ONE_IN_20):
        text = draw(st.text())
    else:
        text = draw(st.sampled_from(CONFIG_SEEDS))
        edits = draw(st.lists(CONFIG_EDITS, max_size=3))
        if edits:
            data = tomllib.loads(text)
            for edit in edits:
                edit.apply(data)
            text = toml_document(data)
        if draw(ONE_IN_2):
            text = apply_all(text, draw(CONFIG_CHANGES))
    return ConfigCase(text, draw(ENCODINGS).encode(text))


def settings_or_error(load: Callable[..., Settings], *args: Any) -> Settings | ConfigError:
    try:
        return load(*args)
    except ConfigError as error:
        return error


def check_config(case: ConfigCase, directory: Path) -> None:
    """Load the config from its file and from its text: they agree, on settings or ConfigError."""
    path = directory / "followupd.toml"
    path.write_bytes(case.data)
    environ = {"HOME": str(directory / "home")}
    loaded = guarded("load_settings", lambda: settings_or_error(load_settings, path, environ))
    event("config: " + type(loaded).__name__)
    text = decoded(case.data)
    if isinstance(loaded, ConfigError):
        assert loaded.exit_code == EX_CONFIG
        assert_problems(loaded, {path: text})
    if text is None:
        return
    parsed = guarded(
        "parse_settings", lambda: settings_or_error(parse_settings, text, path, environ)
    )
    if isinstance(loaded, Settings):
        assert isinstance(parsed, Settings), parsed
        assert parsed.model_dump() == loaded.model_dump()
    else:
        assert isinstance(parsed, ConfigError), "parse_settings accepts what load_settings refuses"
        assert str(parsed) == str(loaded)


def _scratch(factory: pytest.TempPathFactory, name: str) -> Path:
    """One directory for all the examples of a test."""
    directory = factory.getbasetemp() / f"fuzz-{name}"
    directory.mkdir(exist_ok=True)
    return directory


def config_example(text: str) -> ConfigCase:
    return ConfigCase(text, text.encode())


# The inputs that first broke the config loader and `check`, kept as explicit examples.
DEEP_ARRAY_CONFIG = config_example(MINIMAL_CONFIG + "x = " + "[" * DEEP + "]" * DEEP + "\n")
HUGE_INT_CONFIG = config_example(MINIMAL_CONFIG + "[service]\nretention_days = " + "9" * 5000)
MARKUP_CONFIG = config_example(MINIMAL_CONFIG.replace("Claire Martin", "[/]"))


@FUZZ
@example(case=DEEP_ARRAY_CONFIG)
@example(case=HUGE_INT_CONFIG)
@given(case=config_cases())
def test_any_config_gives_settings_or_a_located_config_error(
    case: ConfigCase, tmp_path_factory: pytest.TempPathFactory
) -> None:
    check_config(case, _scratch(tmp_path_factory, "config"))


@settings(FUZZ, max_examples=CLI_EXAMPLES)
@example(case=MARKUP_CONFIG)
@example(case=HUGE_INT_CONFIG)
@given(case=config_cases())
def test_check_offline_exits_0_or_78_without_traceback_and_writes_nothing(
    case: ConfigCase, home: Path, cli: RunCli
) -> None:
    directory = home / "etc"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir()
    path = directory / "followupd.toml"
    path.write_bytes(case.data)
    before = sorted(home.rglob("*"))
    result = guarded(
        "followupd check --offline", lambda: cli("check", "--offline", "--config", path)
    )
    event(f"check --offline: exit {result.code}")
    assert "Traceback" not in result.err + result.out, result
    assert "unexpected error" not in result.err, result
    assert result.code in (0, EX_CONFIG), result
    try:
        load_settings(path, {"HOME": str(home)})
    except ConfigError:
        assert result.code == EX_CONFIG and "invalid configuration" in result.err, result
    else:  # valid, unless a secret cannot be read
        assert result.code == 0 or "password" in result.out + result.err, result
    assert sorted(home.rglob("*")) == before, "check --offline wrote something"


# -- data files ---------------------------------------------------------------------------

KINDS = list(RECORD_KINDS)
FIELDS = sorted({name for model in RECORD_KINDS.values() for name in model.model_fields})
KEYS = sorted(
    str(record.get("key") or record["number"])
    for kind, records in DEMO.items()
    if kind != "touchpoints"
    for record in records
)
DEMO_VALUES = sorted(
    {
        json_value(value): value
        for records in DEMO.values()
        for record in records
        for value in record.values()
    }.items()
)
# the store every example starts from: the demo's clients, contacts and missions, so
# that records of the files may refer to stored ones, and update them
BASE = {kind: DEMO[kind] for kind in ("clients", "contacts", "missions")}


@dataclass(frozen=True)
class Edit:
    """One change to the records of a data file, at record `index` of the `kind`-th kind."""

    what: str
    kind: int
    index: int
    field: str
    value: Any = None

    def apply(self, data: dict[str, Any]) -> None:
        if self.what == "set-kind":
            data[self.field] = self.value
            return
        if not data:
            return
        kind = list(data)[self.kind % len(data)]
        entries = data[kind]
        if not isinstance(entries, list) or not entries:
            return
        index = self.index % len(entries)
        record = entries[index]
        if self.what == "drop-record":
            del entries[index]
        elif self.what == "duplicate-record":
            entries.insert(index, deepcopy(record))
        elif self.what == "move-record":
            target = data.setdefault(self.field if self.field in RECORD_KINDS else "missions", [])
            if isinstance(target, list):
                target.append(entries.pop(index))
        elif self.what == "replace-record":
            entries[index] = self.value
        elif isinstance(record, dict) and self.what == "set-field":
            record[self.field] = self.value
        elif isinstance(record, dict) and record and self.what == "change-field":
            names = list(record)
            record[names[self.index % len(names)]] = self.value
        elif isinstance(record, dict) and record and self.what == "drop-field":
            names = list(record)
            del record[self.field if self.field in record else names[self.index % len(names)]]
        elif isinstance(record, dict) and len(record) > 1 and self.what == "swap-fields":
            names = list(record)
            first = self.field if self.field in record else names[0]
            second = names[(names.index(first) + 1 + self.index) % len(names)]
            record[first], record[second] = record[second], record[first]


# texts just longer than a column holds (PostgreSQL refuses them, SQLite does not)
LONG_TEXTS = st.sampled_from([41, 65, 121, 201, 301, 321, 401, 1001]).map(lambda size: "x" * size)
DATA_VALUES = st.one_of(
    NASTY_VALUES,
    LONG_TEXTS,
    st.sampled_from(DEMO_VALUES).map(lambda pair: pair[1]),
    st.sampled_from(KEYS),
)
EDITS = st.one_of(
    st.builds(
        Edit,
        what=st.sampled_from(
            ["drop-record", "duplicate-record", "drop-field", "swap-fields", "set-field"]
            + ["change-field"] * 3
        ),
        kind=POSITIONS,
        index=POSITIONS,
        field=st.sampled_from(FIELDS) | st.sampled_from(["", "Key", "kéy", "key ", "x" * 200]),
        value=DATA_VALUES,
    ),
    st.builds(  # a reference to another record, of the files or of the store, or to none
        Edit,
        what=st.just("set-field"),
        kind=POSITIONS,
        index=POSITIONS,
        field=st.sampled_from(["client", "contact", "mission"]),
        value=st.sampled_from([*KEYS, "nobody"]),
    ),
    st.builds(
        Edit,
        what=st.sampled_from(["move-record", "replace-record", "set-kind"]),
        kind=POSITIONS,
        index=POSITIONS,
        field=st.sampled_from([*KINDS, "projects", "", "Clients"]) | st.text(max_size=8),
        value=DATA_VALUES,
    ),
)
TOML_DATA_LINES = [
    *("[[clients]]", "[[missions]]", "[[invoices]]", "[clients]", "[[nope]]", 'key = "acme"'),
    *("key = 1", 'number = "F-1"', "start = 2026-02-30", "amount = 1e999", "clients = 3"),
    *("=", "[", '"""', "a.b = 1"),
]
JSON_DATA_LINES = ["{", "}", "[", "]", ",", '"clients": [', '"missions": {}', "null", '"\\ud800"']
DATA_CHANGES = {
    in_json: changes(
        st.one_of(
            st.sampled_from(JSON_DATA_LINES if in_json else TOML_DATA_LINES),
            DATA_VALUES.map(json_value if in_json else toml_value),
            st.text(max_size=30),
        ),
        [*CHANGES, "line-endings"],
        3,
    )
    for in_json in (False, True)
}
DEMO_CHANGES = changes(
    st.one_of(st.sampled_from(TOML_DATA_LINES), DATA_VALUES.map(toml_value), st.text(max_size=30)),
    [*CHANGES, "line-endings", "uncomment"],
    6,
)


@dataclass(frozen=True, repr=False)
class DataCase(ShownCompactly):
    """The data files of one `followupd import`, as (name, bytes), and the owner's zone."""

    files: tuple[tuple[str, bytes], ...]
    zone: str

    def __repr__(self) -> str:
        files = ", ".join(f"({name!r}, {compact(data)})" for name, data in self.files)
        return f"DataCase(({files},), {self.zone!r})"


@st.composite
def portfolios(draw: st.DrawFn) -> dict[str, Any]:
    """Some records of each kind of the demo (few, so that examples run fast), or all of it."""
    if draw(ONE_IN_6):
        return deepcopy(dict(DEMO))
    data: dict[str, Any] = {}
    for kind in KINDS:
        records = DEMO[kind]
        start = draw(st.integers(0, len(records) - 1))
        count = draw(st.integers(0, 3))
        if count:
            data[kind] = deepcopy(records[start : start + count])
    return data


@st.composite
def data_cases(draw: st.DrawFn, in_json: bool) -> DataCase:
    """One or two files of records: part of the demo, edited by record, by line and by byte."""
    suffix = ".json" if in_json else ".toml"
    zone = draw(st.sampled_from(ZONES))
    if draw(ONE_IN_20):  # random text
        return DataCase(((f"random{suffix}", draw(ENCODINGS).encode(draw(st.text()))),), zone)
    if not in_json and draw(ONE_IN_20):  # the demo as written, comments and all
        text = apply_all(DEMO_TEXT, draw(DEMO_CHANGES))
        return DataCase(((f"demo{suffix}", draw(ENCODINGS).encode(text)),), zone)
    data = draw(portfolios())
    for edit in draw(st.lists(EDITS, max_size=4)):
        edit.apply(data)
    parts = [data]
    if draw(ONE_IN_4):  # in two files, which may refer to each other
        parts = [{}, {}]
        for n, (kind, entries) in enumerate(data.items()):
            parts[n % 2][kind] = entries
    files = []
    for n, part in enumerate(parts):
        json_file = in_json if n == 0 else draw(st.booleans())
        text = json_value(part) if json_file else toml_document(part)
        if draw(ONE_IN_2):
            text = apply_all(text, draw(DATA_CHANGES[json_file]))
        name = f"data{n}" + (".json" if json_file else ".toml")
        if draw(ONE_IN_20):
            name = draw(st.sampled_from([name.upper(), f"data{n}.txt", f"data{n}"]))
        files.append((name, draw(ENCODINGS).encode(text)))
    return DataCase(tuple(files), zone)


@dataclass(frozen=True, repr=False)
class Template(ShownCompactly):
    """A database holding BASE, on one engine, that every example starts from afresh.

    SQLite: a file copied for each example, so that a refused import can be
    checked byte for byte, write-ahead log included. PostgreSQL: a database
    whose every example runs in a transaction rolled back at its end, the
    importer's own transaction being a savepoint inside it; a refused import
    is checked row by row.
    """

    directory: Path
    baseline: bytes | str  # the SQLite file's bytes, or the PostgreSQL rows' digest
    engine: Engine | None = None  # PostgreSQL's

    def __repr__(self) -> str:
        where = "PostgreSQL" if self.engine else f"<{len(self.baseline)} bytes>"
        return f"Template({str(self.directory)!r}, {where})"


@pytest.fixture(scope="module", params=ENGINES)
def template(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Template]:
    directory = tmp_path_factory.mktemp("fuzz-import")
    on_sqlite = request.param == "sqlite"
    url = (
        make_url(f"sqlite:///{directory / 'template.db'}")
        if on_sqlite
        else fresh_postgres_database(request.getfixturevalue("postgres_url"))
    )
    store = Store.open(url)
    try:
        store.upgrade()
        base = directory / "base.json"
        base.write_text(json_value(BASE), encoding="utf-8")
        report = import_files(store, [base], ZoneInfo("Europe/Paris"))
        assert report.changes == sum(len(records) for records in BASE.values())
    finally:
        store.close()
    if on_sqlite:
        yield Template(directory, Path(url.database or "").read_bytes())
        return
    engine = create_engine(url)
    with engine.connect() as connection:
        baseline = rows_digest(connection)
    yield Template(directory, baseline, engine)
    engine.dispose()


@contextmanager
def example_store(template: Template) -> Iterator[tuple[Store, Callable[[], bytes | str]]]:
    """A store holding BASE for one example, and how to tell whether it changed."""
    if template.engine is None:
        database = template.directory / "work" / "followupd.db"
        assert isinstance(template.baseline, bytes)
        database.write_bytes(template.baseline)
        store = Store.open(make_url(f"sqlite:///{database}"), create=False)

        def sqlite_bytes() -> bytes:
            wal = database.with_name(database.name + "-wal")
            assert not wal.exists() or wal.stat().st_size == 0, "a refused import left a WAL"
            return database.read_bytes()

        try:
            yield store, sqlite_bytes
        finally:
            store.close()
        return
    with template.engine.connect() as connection:
        outer = connection.begin()
        store = Store(template.engine)
        store.sessions = sessionmaker(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        try:
            yield store, lambda: rows_digest(connection)
        finally:
            outer.rollback()


def check_import(case: DataCase, template: Template) -> None:
    """Import, then import again: a report then no change, or DataError and nothing written."""
    work = template.directory / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    paths: dict[Path, str | None] = {}
    for name, data in case.files:
        path = work / name
        path.write_bytes(data)
        paths[path] = decoded(data)
    zone = ZoneInfo(case.zone)
    with example_store(template) as (store, content):

        def run() -> DataError | None:
            try:
                import_files(store, list(paths), zone)
            except DataError as error:
                return error
            again = import_files(store, list(paths), zone)
            assert again.changes == 0, (dict(again.created), dict(again.updated))
            if template.engine is not None:  # PostgreSQL took it: it fits
                return None
            with store.session() as session:  # what SQLite took fits PostgreSQL too
                for table in Base.metadata.sorted_tables:
                    texts = [column for column in table.columns if isinstance(column.type, String)]
                    for row in session.execute(select(*texts)):
                        for column, value in zip(texts, row, strict=True):
                            assert_fits(table.name, column.name, value)
            return None

        refused = guarded("import_files", run)
        event(f"import: {'DataError' if refused else 'imported'}")
        if refused is not None:
            assert refused.exit_code == EX_DATAERR
            assert_problems(refused, paths)
            assert content() == template.baseline, "a refused import changed the database"


def data_example(name: str, text: str | bytes) -> DataCase:
    return DataCase(((name, text.encode() if isinstance(text, str) else text),), "UTC")


_ISSUE = '{"issues": [{"key": "i", "mission": "morvan-tms", "summary": "s", "opened": "%s"}]}'
_NOTE = '{"touchpoints": [{"mission": "morvan-tms", "kind": "call", "at": "%s", "note": "%s"}]}'
# The inputs that first broke the importer, kept as explicit examples.
DEEP_TOML = data_example("deep.toml", "clients = " + "[" * DEEP + "]" * DEEP)
DEEP_JSON = data_example("deep.json", '{"clients": ' + "[" * DEEP + "]" * DEEP + "}")
HUGE_JSON = data_example("huge.json", '{"missions": [{"start": ' + "9" * 5000 + "}]}")
EARLY_INSTANT = data_example("early.json", _ISSUE % "0001-01-01T00:00:00+14:00")
LATE_TOML_INSTANT = data_example(
    "late.toml",
    '[[touchpoints]]\nmission = "morvan-tms"\nkind = "call"\nat = 9999-12-31T23:59:59-14:00\n',
)
LONG_NAME = data_example("long.json", '{"clients": [{"key": "acme", "name": "%s"}]}' % ("x" * 201))
NUL_NOTE = data_example("nul.json", _NOTE % ("2026-11-10T10:00:00", "\\u0000"))
SURROGATE_NOTE = data_example("note.json", _NOTE % ("2026-11-10T10:00:00", "\\ud800"))


@FUZZ
@example(case=DEEP_TOML)
@example(case=LATE_TOML_INSTANT)
@given(case=data_cases(in_json=False))
def test_any_toml_data_imports_all_or_nothing(case: DataCase, template: Template) -> None:
    check_import(case, template)


@FUZZ
@example(case=DEEP_JSON)
@example(case=HUGE_JSON)
@example(case=EARLY_INSTANT)
@example(case=SURROGATE_NOTE)
@example(case=NUL_NOTE)
@example(case=LONG_NAME)
@given(case=data_cases(in_json=True))
def test_any_json_data_imports_all_or_nothing(case: DataCase, template: Template) -> None:
    check_import(case, template)


# -- calendar objects ---------------------------------------------------------------------

CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# when the sync reads: the window is the one it reads meetings in
READ_AT = [
    datetime(2026, 11, 22, 12, tzinfo=ZoneInfo("Europe/Paris")),
    datetime(2027, 1, 1, tzinfo=UTC),
]
LOOKBACK = timedelta(days=90)
DATE_VALUES = [
    *("20261110T140000", "20261110T140000Z", "20261110", "20261110T140000+0100", "2026-11-10"),
    *("20261345T250000Z", "20260230", "00010101T000000Z", "00010101", "16010101T000000"),
    *("99991231T235959Z", "99991231", "19700101T000000Z", "20261110T140000Z,20261111T140000Z"),
    *("20261110/P1D", "T", ""),
]
DURATIONS = ["PT1H", "P1D", "-PT1H", "P9999999W", "PT0S", "P", "1H", "P1Y", "PT99999999999S"]
ZONE_NAMES = [
    *("Europe/Paris", "Romance Standard Time", "W. Europe Standard Time", "Customized Time Zone"),
    *('"(UTC+01:00) Brussels, Copenhagen, Madrid, Paris"', "America/New_York", "Etc/GMT+14"),
    *("UTC", "Z", "", "../../etc/passwd", "Mars/Olympus", '"quoted"'),
]
PROPERTY_NAMES = [
    *("DTSTART", "DTEND", "DURATION", "DUE", "RRULE", "RDATE", "EXDATE", "RECURRENCE-ID"),
    *("COMPLETED", "STATUS", "UID", "SUMMARY", "DESCRIPTION", "CATEGORIES", "ATTENDEE"),
    *("ORGANIZER", "TZID", "TZOFFSETFROM", "TZOFFSETTO", "X-UNKNOWN"),
]
FREQUENCIES = ["SECONDLY", "MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY"]
RULE_PARTS = {
    "INTERVAL": ["1", "2", "0", "-1", "99999999999", "x"],
    "COUNT": ["1", "5", "0", "-3", "99999999999999999999", "x"],
    "UNTIL": ["20261231T000000Z", "20261231", "20200101", "99991231T235959Z", "x"],
    "BYDAY": ["MO", "MO,WE,FR", "-1SU", "1MO", "53MO", "XX", ""],
    "BYSETPOS": ["1", "-1", "400", "0"],
    "WKST": ["SU", "XX"],
    "BYMINUTE": ["0", "0,30", "61"],
    "BYSECOND": ["0", "60"],
}
# two of these can make a rule no day meets (BYMONTH=2 with BYMONTHDAY=31), which dateutil
# would look for up to the year 9999, seconds for each object: the reader stops it sooner
RULE_FILTERS = {
    "BYMONTH": ["2", "13", "0"],
    "BYMONTHDAY": ["31", "-1", "32", "0"],
    "BYYEARDAY": ["366", "-1", "0"],
    "BYWEEKNO": ["53", "1", "0"],
}
RULE_PART_VALUES = {
    name: st.sampled_from(values) for name, values in {**RULE_PARTS, **RULE_FILTERS}.items()
}
BY_HOUR = st.sampled_from(["9", "9,14", "25", ",".join(map(str, range(24)))])


@st.composite
def rrules(draw: st.DrawFn) -> str:
    """A recurrence rule, valid or not; a valid one may be met by no day at all."""
    frequency = draw(st.sampled_from([*FREQUENCIES, "daily", "FORTNIGHTLY", ""]))
    parts = [f"FREQ={frequency}"]
    for name in RULE_PARTS:
        if draw(ONE_IN_4):
            parts.append(f"{name}={draw(RULE_PART_VALUES[name])}")
    if frequency != "HOURLY" and draw(ONE_IN_4):  # BYHOUR=9 every other hour: never met
        parts.append(f"BYHOUR={draw(BY_HOUR)}")
    for name in RULE_FILTERS:
        if draw(ONE_IN_4):
            parts.append(f"{name}={draw(RULE_PART_VALUES[name])}")
    if draw(ONE_IN_10):
        parts.append(draw(st.text(max_size=12)))
    if draw(st.booleans()):
        parts.reverse()
    return ";".join(parts)


RRULES = rrules()
DESCRIPTION_LINES = st.builds(
    lambda name, value: f"{name}: {value}",
    st.sampled_from([*conventions.mission_fields(), "statu", "Lieu", "x"]),
    st.one_of(
        NASTY_VALUES.map(toml_value),
        st.sampled_from(["aucun", "none", "", "2026-09-01", "true", "[[[", "3000", "acme"]),
    ),
)
# a DESCRIPTION of `field: value` lines, as mission events hold them
DESCRIPTIONS = st.lists(DESCRIPTION_LINES, min_size=1, max_size=6).map(
    lambda lines: "DESCRIPTION:" + "\\n".join(line.replace("\n", "\\n") for line in lines)
)
ICS_VALUES = st.one_of(
    st.sampled_from(DATE_VALUES),
    st.sampled_from(DURATIONS),
    st.sampled_from(NASTY_TEXTS),
    st.sampled_from(["mailto:jeanne.dupont@acme.example", "COMPLETED", "mission"]),
    st.text(max_size=20),
)
PROPERTY_PARAMETERS = st.one_of(
    st.just(""),
    st.sampled_from(ZONE_NAMES).map(lambda zone: f";TZID={zone}"),
    st.sampled_from(["DATE", "DATE-TIME", "PERIOD", "TEXT", "X"]).map(
        lambda kind: f";VALUE={kind}"
    ),
)
PROPERTIES = st.builds(
    lambda name, parameters, value: f"{name}{parameters}:{value}",
    st.sampled_from(PROPERTY_NAMES),
    PROPERTY_PARAMETERS,
    ICS_VALUES,
)
BOUNDARIES = st.builds(
    lambda boundary, component: f"{boundary}:{component}",
    st.sampled_from(["BEGIN", "END"]),
    st.sampled_from(["VCALENDAR", "VEVENT", "VTODO", "VTIMEZONE", "VALARM", "STANDARD", "X-ODD"]),
)
# a content line: a property with parameters and a value, or a component's boundary
ICS_LINES = st.one_of(
    PROPERTIES, RRULES.map(lambda rule: f"RRULE:{rule}"), DESCRIPTIONS, BOUNDARIES
)
ICS_CHANGES = changes(
    st.one_of(ICS_LINES, RRULES, ICS_VALUES, st.sampled_from(DATE_VALUES)),
    [*LINE_CHANGES, *["replace-value"] * 3, "insert-text", "delete-text", "truncate"],
    4,
)


@dataclass(frozen=True, repr=False)
class IcsCase(ShownCompactly):
    """One calendar object as the server sends it, the owner's zone and when it is read."""

    data: bytes | str
    zone: str
    at: datetime

    def __repr__(self) -> str:
        return f"IcsCase({compact(self.data)}, {self.zone!r}, {self.at!r})"


def one_event(*lines: str) -> str:
    """A calendar of one VEVENT made of `lines`, with CRLF line ends."""
    body = "".join(f"{line}\r\n" for line in lines if line)
    return (
        f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\n{body}END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


EVENT_TIMES = st.one_of(
    st.sampled_from(DATE_VALUES).map(lambda value: f"DTSTART:{value}"),
    st.builds(
        lambda zone, value: f"DTSTART;TZID={zone}:{value}",
        st.sampled_from(ZONE_NAMES),
        st.sampled_from(DATE_VALUES),
    ),
    st.sampled_from(DATE_VALUES).map(lambda value: f"DTSTART;VALUE=DATE:{value}"),
)
EVENT_ENDS = st.one_of(
    st.just(""),
    st.sampled_from(DATE_VALUES).map(lambda value: f"DTEND:{value}"),
    st.sampled_from(DURATIONS).map(lambda value: f"DURATION:{value}"),
)
EVENT_EXTRAS = st.lists(
    st.one_of(
        st.sampled_from(["EXDATE", "RDATE", "RECURRENCE-ID"]).flatmap(
            lambda name: st.sampled_from(DATE_VALUES).map(lambda value: f"{name}:{value}")
        ),
        RRULES.map(lambda rule: f"RRULE:{rule}"),
    ),
    max_size=2,
)
MISSION_TITLES = st.sampled_from(
    ["[mission] Audit", "[MISSION]", "[mission]" + "x" * 300, "[mission]" + "x" * 301, "Audit"]
)
MISSION_CATEGORIES = st.sampled_from(["", "CATEGORIES:mission", "CATEGORIES:Mission,Client"])


@st.composite
def events(draw: st.DrawFn) -> str:
    """One VEVENT made up: a recurring event, or a mission event with its description."""
    lines = ["UID:made-up@fuzz.example", "DTSTAMP:20261101T080000Z", draw(EVENT_TIMES)]
    lines.append(draw(EVENT_ENDS))
    if draw(st.booleans()):
        lines += [f"RRULE:{draw(RRULES)}", *draw(EVENT_EXTRAS)]
    else:
        lines += [f"SUMMARY:{draw(MISSION_TITLES)}", draw(MISSION_CATEGORIES), draw(DESCRIPTIONS)]
    return one_event(*lines)


EVENTS = events()
MADE_UP = st.lists(ICS_LINES, max_size=12).map(lambda lines: one_event(*lines))


@st.composite
def ics_cases(draw: st.DrawFn) -> IcsCase:
    """A calendar object: a seed of the corpus or a made-up event, edited by line and byte."""
    zone, at = draw(st.sampled_from(ZONES)), draw(st.sampled_from(READ_AT))
    if draw(ONE_IN_20):
        return IcsCase(draw(st.binary(max_size=200)), zone, at)
    if draw(ONE_IN_10):
        return IcsCase(draw(MADE_UP).encode("utf-8", errors="surrogatepass"), zone, at)
    if draw(ONE_IN_2):
        text = draw(EVENTS)
    else:
        text = ICS_SEEDS[draw(st.sampled_from(sorted(ICS_SEEDS)))].replace("\n", "\r\n")
    if draw(ONE_IN_2):
        text = apply_all(text, draw(ICS_CHANGES))
    if draw(ONE_IN_20):
        return IcsCase(text, zone, at)  # read_object takes text too
    return IcsCase(draw(ENCODINGS).encode(text), zone, at)


def check_happening(happening: Happening, case: IcsCase, zone: ZoneInfo) -> None:
    """What the sync does with an event must work on it."""
    assert happening.start.utcoffset() is not None and happening.end.utcoffset() is not None
    assert happening.end >= happening.start
    texts = [happening.uid, happening.summary, happening.description]
    texts += [*happening.categories, *happening.attendees]
    for text in texts:
        assert not CONTROL.search(text), text
        if isinstance(case.data, bytes):  # decoded bytes: text the database can store
            text.encode("utf-8")
    happening.last_day  # noqa: B018  (a property: it must not raise)
    conventions.is_past(happening, case.at)
    conventions.bracketed_keys(happening)
    if conventions.is_mission_event(happening):
        described = conventions.mission_event(happening)
        assert all(isinstance(problem, str) for problem in described.problems)
        if not described.problems:
            try:
                record = MissionRecord.model_validate(described.fields, context={"zone": zone})
            except ValidationError:
                pass
            else:  # the mission the sync writes: a valid record fits the table
                columns = Base.metadata.tables["missions"].c
                for name, value in record:
                    if name in columns:
                        assert_fits("missions", name, value)
    else:  # the touchpoint the sync records for a past meeting
        TouchpointRecord(
            mission="acme-audit",
            kind="meeting",
            at=happening.start,
            note=happening.summary[:500] or None,
        )


def check_read(case: IcsCase) -> None:
    zone = ZoneInfo(case.zone)
    window = (case.at - LOOKBACK, case.at)

    def run() -> ReadObject | UnreadableObject:
        try:
            found = read_object(case.data, zone, window)
        except UnreadableObject as error:
            return error
        # events or tasks; or nothing followupd uses (an unknown component), said so
        assert found.events or found.tasks or (found.unused or "").startswith("no event or task")
        assert all(isinstance(note, str) for note in found.notes)
        assert len(found.occurrences) <= MAX_OCCURRENCES
        for happening in found.events + found.occurrences:
            check_happening(happening, case, zone)
        assert all(happening.start <= window[1] for happening in found.occurrences)
        for task in found.tasks:
            assert task.status == task.status.upper() and not CONTROL.search(task.uid)
            assert task.completed_at is None or task.completed_at.utcoffset() is not None
        return found

    found = guarded("read_object", run)
    event(f"ics: {type(found).__name__}")
    if isinstance(found, UnreadableObject):
        assert str(found).strip(), "skipped without a reason"


def ics_example(*lines: str) -> IcsCase:
    text = one_event("UID:pinned@fuzz.example", "DTSTAMP:20261101T080000Z", *lines)
    return IcsCase(text.encode(), "Europe/Paris", READ_AT[0])


# The inputs that first broke the CalDAV reader, kept as explicit examples.
ZERO_INTERVAL = ics_example("DTSTART:20261102T090000Z", "RRULE:FREQ=DAILY;INTERVAL=0")
ANCIENT_DAILY = ics_example("DTSTART:00010101T090000Z", "RRULE:FREQ=DAILY")
DEEP_DESCRIPTION = ics_example(
    "DTSTART;VALUE=DATE:20261201", "SUMMARY:[mission] x", "DESCRIPTION:client: " + "[" * DEEP
)
LONG_TITLE = ics_example(
    "DTSTART;VALUE=DATE:20261201",
    "SUMMARY:[mission] " + "t" * 301,
    "DESCRIPTION:key: acme-x\\nclient: acme",
)
FIRST_DAY_MISSION = ics_example(
    "DTSTART;VALUE=DATE:00010101", "DURATION:PT1H", "SUMMARY:[mission] x", "DESCRIPTION:key: x"
)
# rules no day meets: dateutil looked for an instance up to the year 9999, 3 s and 5 s
NEVER_MET_DAILY = ics_example(
    "DTSTART:20261102T090000Z", "RRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"
)
NEVER_MET_HOURLY = ics_example(
    "DTSTART:20261102T090000Z", "RRULE:FREQ=HOURLY;BYMONTHDAY=31;BYMONTH=4,6,9,11"
)
HUGE_DESCRIPTION = ics_example(
    "DTSTART;VALUE=DATE:20261201", "SUMMARY:[mission] x", "DESCRIPTION:key: " + "9" * 5000
)


def zoned_example(tzid: str, standard_rule: str) -> IcsCase:
    """An event in zone `tzid`, which its VTIMEZONE defines with `standard_rule`."""
    definition = (
        f"BEGIN:VTIMEZONE\r\nTZID:{tzid}\r\nBEGIN:STANDARD\r\nDTSTART:16010101T030000\r\n"
        f"TZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nRRULE:{standard_rule}\r\nEND:STANDARD\r\n"
        "BEGIN:DAYLIGHT\r\nDTSTART:16010101T020000\r\nTZOFFSETFROM:+0100\r\n"
        "TZOFFSETTO:+0200\r\nRRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3\r\nEND:DAYLIGHT\r\n"
        "END:VTIMEZONE\r\n"
    )
    event = one_event("UID:pinned@fuzz.example", f"DTSTART;TZID={tzid}:20261110T140000")
    text = event.replace("BEGIN:VEVENT", definition + "BEGIN:VEVENT", 1)
    return IcsCase(text.encode(), "Europe/Paris", READ_AT[0])


# zones whose onsets dateutil looked for minute by minute from 1601: minutes for each object
MINUTELY_ZONE = zoned_example("Customized Time Zone", "FREQ=MINUTELY")
MINUTELY_WINDOWS_ZONE = zoned_example("Romance Standard Time", "FREQ=MINUTELY")


@FUZZ
@example(case=ZERO_INTERVAL)
@example(case=ANCIENT_DAILY)
@example(case=NEVER_MET_DAILY)
@example(case=NEVER_MET_HOURLY)
@example(case=MINUTELY_ZONE)
@example(case=MINUTELY_WINDOWS_ZONE)
@example(case=DEEP_DESCRIPTION)
@example(case=HUGE_DESCRIPTION)
@example(case=FIRST_DAY_MISSION)
@example(case=LONG_TITLE)
@given(case=ics_cases())
def test_any_calendar_object_is_read_or_skipped_with_a_reason(case: IcsCase) -> None:
    check_read(case)
