"""The config file: found, read once, validated into typed settings.

Every problem of a file is reported at once, each with the file, the line and
the dotted key path. Secrets are named by a file or an environment variable,
read only when needed, and never printed.
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from collections.abc import Mapping
from datetime import time
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import (
    BaseModel,
    Field,
    PrivateAttr,
    StrictBool,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from followupd.accounts import CaldavAccount, WithPassword, is_loopback, listens_on_loopback
from followupd.accounts import Secret as Secret  # the public name of a config secret
from followupd.errors import ConfigError, Problem
from followupd.people import Owner, OwnerEntry
from followupd.rules.options import RulesConfig
from followupd.schema import Directory, Mailbox, SingleLine, StatePath, StrictModel
from followupd.tomlpos import KeyPath, format_path, line_of, loads_tolerant

CONFIG_FILE_NAME = "followupd.toml"
DATABASE_URL_VARIABLE = "FOLLOWUPD_DATABASE_URL"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DEFAULT_WRITE_CALENDAR = "followupd"
BOTH_FORMS = object()  # stands for [owner] when [[owners]] is there too


# -- where things are -------------------------------------------------------------------


def _home(environ: Mapping[str, str]) -> Path:
    return Path(environ["HOME"]) if environ.get("HOME") else Path.home()


def user_config_path(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_CONFIG_HOME") or str(_home(environ) / ".config")
    return Path(base) / "followupd" / "config.toml"


def config_candidates(environ: Mapping[str, str], cwd: Path) -> list[Path]:
    """Where the config is looked for, in order, after ``--config`` (README, Configuration)."""
    candidates = [cwd / CONFIG_FILE_NAME, user_config_path(environ)]
    candidates.append(Path("/etc/followupd/config.toml"))
    return candidates


def find_config(explicit: Path | None, environ: Mapping[str, str], cwd: Path) -> Path:
    if explicit is not None:
        return explicit
    if environ.get("FOLLOWUPD_CONFIG"):
        return Path(environ["FOLLOWUPD_CONFIG"])
    candidates = config_candidates(environ, cwd)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(path) for path in candidates)
    message = f"no config file found (looked at {looked}); run `followupd init` to write one"
    raise ConfigError([Problem(candidates[0], message)])


def config_path_for_init(explicit: Path | None, environ: Mapping[str, str], cwd: Path) -> Path:
    """Where `init` writes: the config that would be read, else the user's config path."""
    try:
        return find_config(explicit, environ, cwd)
    except ConfigError:
        return user_config_path(environ)


def state_directory(environ: Mapping[str, str]) -> Path:
    """``$STATE_DIRECTORY`` (systemd), else the XDG state home."""
    if environ.get("STATE_DIRECTORY"):
        return Path(environ["STATE_DIRECTORY"].split(":")[0])
    base = environ.get("XDG_STATE_HOME") or str(_home(environ) / ".local" / "state")
    return Path(base) / "followupd"


# -- sections ---------------------------------------------------------------------------


class Database(WithPassword):
    """``[database]``: SQLite (embedded default) or PostgreSQL."""

    url: str = Field("sqlite:///followupd.db", validate_default=True)

    @field_validator("url")
    @classmethod
    def _known_engine(cls, value: str, info: ValidationInfo) -> str:
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError("not a database URL such as 'sqlite:///followupd.db'") from None
        if url.get_backend_name() == "sqlite":
            state_dir = (info.context or {}).get("state_dir")
            if url.database and url.database != ":memory:" and state_dir is not None:
                url = url.set(database=str(Path(state_dir) / url.database))
        elif url.get_backend_name() == "postgresql":
            if url.password is not None:
                raise ValueError("put the password in password_file or password_env, not the URL")
            url = url.set(drivername="postgresql+psycopg")
        else:
            raise ValueError("only sqlite:/// and postgresql:// URLs are supported")
        return url.render_as_string(hide_password=False)

    def sqlalchemy_url(self, environ: Mapping[str, str] | None = None) -> URL:
        url = make_url(self.url)
        password = self.password("database").reveal(environ)
        return url if password is None else url.set(password=password)

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")


class Smtp(WithPassword):
    """``[smtp]``: where client emails go; without it they go to a Maildir."""

    host: SingleLine
    port: StrictInt | None = Field(None, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: SingleLine | None = None
    sender: Mailbox | None = Field(None, alias="from")
    timeout_seconds: float = Field(60.0, gt=0, le=600)
    rate_per_minute: StrictInt = Field(60, ge=1, le=100_000)
    ca_file: Path | None = None

    @model_validator(mode="after")
    def _safe_login(self) -> Self:
        if self.has_password and self.username is None:
            raise ValueError("a password needs a username")
        if self.has_password and self.security == "none" and not is_loopback(self.host):
            raise ValueError("refusing to send a password without TLS: use starttls or tls")
        return self

    @property
    def effective_port(self) -> int:
        if self.port is not None:
            return self.port
        return {"starttls": 587, "tls": 465, "none": 25}[self.security]


class Caldav(CaldavAccount):
    """``[caldav]``: the calendar server read for missions and written with tasks."""

    read_calendars: tuple[SingleLine, ...] = ()
    write_calendar: SingleLine = DEFAULT_WRITE_CALENDAR


class Feed(StrictModel):
    """``[feed]``: the HTTP listener for the iCalendar feed, health and metrics.

    It speaks plain HTTP, so it listens on loopback unless ``allow_remote``
    says otherwise (then behind a TLS reverse proxy, say, and with a warning
    at start). A host name other than ``localhost`` is not loopback: it may
    resolve anywhere.
    """

    allow_remote: StrictBool = False  # before `listen`, whose check reads it
    listen: str = "127.0.0.1:8731"
    token_file: StatePath = Field(Path("feed.token"), validate_default=True)

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str, info: ValidationInfo) -> str:
        match = re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})", value)
        if not match or not 0 < int(match.group(2)) < 65536:
            raise ValueError("must be HOST:PORT, such as '127.0.0.1:8731' or '[::1]:8731'")
        remote = not listens_on_loopback(match.group(1).strip("[]"))
        if remote and info.data.get("allow_remote") is False:  # None: allow_remote is wrong
            raise ValueError(
                f"{match.group(1)} is not a loopback address: the feed, /metrics and /healthz "
                "would be served in plain HTTP to the network; listen on 127.0.0.1, [::1] or "
                "localhost, or set allow_remote = true in [feed] (behind a TLS reverse proxy)"
            )
        return value

    @property
    def remote(self) -> bool:
        """Whether the listener is reachable from beyond this machine."""
        return not listens_on_loopback(self.host)

    @property
    def host(self) -> str:
        return self.listen.rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])


class Business(StrictModel):
    """``[business]``: when follow-ups may leave, in the recipient's time zone."""

    send_window: str = "09:00-18:00"
    working_days: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")

    @field_validator("send_window")
    @classmethod
    def _window(cls, value: str) -> str:
        match = re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)", value)
        if not match:
            raise ValueError("must be 'HH:MM-HH:MM', such as '09:00-18:00'")
        opens, closes = value.split("-")
        if opens >= closes:
            raise ValueError("the window must open before it closes")
        return value

    @field_validator("working_days")
    @classmethod
    def _some_days(cls, days: tuple[str, ...]) -> tuple[str, ...]:
        if not days:
            raise ValueError("at least one working day is needed")
        if len(set(days)) != len(days):
            raise ValueError("a day is listed twice")
        return days

    @property
    def window(self) -> tuple[time, time]:
        opens, closes = self.send_window.split("-")
        end = time.max if closes == "24:00" else time.fromisoformat(closes)
        return time.fromisoformat(opens), end

    @property
    def weekday_numbers(self) -> frozenset[int]:
        """Working days as ``date.weekday()`` numbers (Monday is 0)."""
        return frozenset(WEEKDAYS.index(day) for day in self.working_days)


class TemplatesSection(StrictModel):
    """``[templates]``: a directory whose ``LANG/RULE/STEP.j2`` files override the shipped ones."""

    directory: Directory | None = None


class Service(StrictModel):
    """``[service]``: how often `followupd run` does each of its passes, and what it keeps."""

    sync_every_seconds: StrictInt = Field(300, ge=10, le=86_400)
    evaluate_every_seconds: StrictInt = Field(900, ge=10, le=86_400)
    housekeeping_every_seconds: StrictInt = Field(3600, ge=60, le=86_400)
    # sent, cancelled and expired follow-ups older than this are deleted; it is
    # longer than any rule's grace, so a deleted follow-up can never come back
    retention_days: StrictInt = Field(400, ge=90, le=36_500)
    drain_seconds: StrictInt = Field(20, ge=1, le=300)  # in-flight deliveries on stop


class Settings(StrictModel):
    """The whole config file, validated."""

    # [owner] is required, and None only where [[owners]] stands in for it
    owner_tables: tuple[OwnerEntry, ...] = Field((), alias="owners", min_length=1)
    owner_table: Owner | None = Field(alias="owner")
    database: Database = Database()
    smtp: Smtp | None = None
    caldav: Caldav | None = None
    feed: Feed = Feed()
    service: Service = Service()
    business: Business = Business()
    templates: TemplatesSection = TemplatesSection()
    rules: RulesConfig = RulesConfig()

    @model_validator(mode="before")
    @classmethod
    def _every_section(cls, data: Any) -> Any:
        """Absent sections are validated too, so their relative paths are anchored.

        ``[owner]`` is required unless ``[[owners]]`` stands in for it; both
        at once is an error reported at ``[owner]``.
        """
        if isinstance(data, dict):
            data = {"database": {}, "feed": {}, "business": {}, **data}
            if "owners" in data:
                data["owner"] = BOTH_FORMS if "owner" in data else None
        return data

    @field_validator("owner_table", mode="before")
    @classmethod
    def _one_form(cls, owner: Any) -> Any:
        if owner is BOTH_FORMS:
            raise ValueError(
                "[owner] and [[owners]] cannot be used together: "
                "move this owner into [[owners]], with a key"
            )
        return owner

    @model_validator(mode="after")
    def _resolve_owners(self, info: ValidationInfo) -> Self:
        """Every owner with the defaults of other sections filled in.

        The first owner inherits what the single-owner form has (``[feed]
        token_file``, ``[caldav] write_calendar``), so moving from ``[owner]``
        to ``[[owners]]`` keeps the feed address and the calendar; the others
        get ``feed-KEY.token`` and, on the shared account, ``WRITE-KEY``.
        """
        state_dir = Path((info.context or {}).get("state_dir") or ".")
        base = self.caldav.write_calendar if self.caldav else DEFAULT_WRITE_CALENDAR
        entries = self.owner_tables
        if self.owner_table is not None:
            entries = (OwnerEntry.single(self.owner_table),)
        resolved = []
        for number, entry in enumerate(entries):
            first, own_account = number == 0, entry.caldav is not None
            token = self.feed.token_file if first else state_dir / f"feed-{entry.key}.token"
            calendar = base if first or own_account else f"{base}-{entry.key}"
            resolved.append(entry.model_copy(update={
                "feed_token_file": entry.feed_token_file or token,
                "write_calendar": entry.write_calendar or calendar,
            }))  # fmt: skip
        self._owners = tuple(resolved)
        return self

    def owner_problems(self) -> list[tuple[KeyPath, str]]:
        """What no single table shows: a key, token file or read calendar used twice."""
        problems: list[tuple[KeyPath, str]] = []
        taken: dict[tuple[str, object], int] = {}
        for number, entry in enumerate(self._owners if self.owner_tables else ()):
            account = entry.caldav or self.caldav
            if entry.read_calendars and account is None:
                where: KeyPath = ("owners", number, "read_calendars")
                problems.append((where, "no CalDAV account: add [caldav], or [owners.caldav]"))
            server = (account.url, account.username) if account else None
            claims: list[tuple[str, object, str]] = [
                ("key", entry.key, f"key {entry.key!r} is taken"),
                ("feed_token_file", entry.feed_token_file, f"{entry.feed_token_file} is used"),
            ]
            claims += [("read_calendars", (server, name), f"calendar {name!r} is read")
                       for name in entry.read_calendars]  # fmt: skip
            for field, value, what in claims:
                earlier = taken.setdefault((field, value), number)
                if earlier != number:
                    message = f"{what} by owners[{earlier}] already: each owner needs their own"
                    problems.append((("owners", number, field), message))
        return problems

    _owners: tuple[OwnerEntry, ...] = PrivateAttr(default=())
    _source: Path = PrivateAttr(default=Path("<memory>"))
    _state_dir: Path = PrivateAttr(default=Path())

    @property
    def owners(self) -> tuple[OwnerEntry, ...]:
        """Every owner, in the config's order; ``[owner]`` gives one, keyed "owner"."""
        return self._owners

    @property
    def owner(self) -> Owner:
        """The first owner: the only one of ``[owner]``, and that of missions naming none."""
        return self._owners[0].person

    @property
    def several_owners(self) -> bool:
        return len(self._owners) > 1

    def owner_for(self, key: str | None) -> OwnerEntry:
        """The owner keyed `key`; the first owner for None, or for a key no longer here."""
        return next((entry for entry in self._owners if entry.key == key), self._owners[0])

    @property
    def source(self) -> Path:
        return self._source

    @property
    def state_dir(self) -> Path:
        return self._state_dir


# -- loading ----------------------------------------------------------------------------


def load_settings(path: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the config file at `path`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problem = Problem(path, "no such file; run `followupd init` to write one")
        raise ConfigError([problem]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError([Problem(path, f"cannot read: {error}")]) from None
    return parse_settings(text, path, environ)


def parse_settings(text: str, path: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Validate a config text; `path` names it in errors and anchors relative paths."""
    environ = os.environ if environ is None else environ
    state_dir = state_directory(environ)
    parsed = loads_tolerant(text)
    problems = [Problem(path, message, line=line) for line, message in parsed.syntax_errors]
    settings: Settings | None = None
    context = {"config_dir": path.parent.absolute(), "state_dir": state_dir}
    data, from_environment = _database_url_from_environment(parsed.data, environ)
    found: list[tuple[KeyPath, str]] = []
    try:
        settings = Settings.model_validate(data, context=context)
    except ValidationError as error:
        for detail in error.errors():
            loc = tuple(part for part in detail["loc"] if isinstance(part, str | int))
            found.append((loc, _explain(detail, loc)))
    else:
        found += settings.owner_problems()
    for loc, message in found:
        if from_environment and loc == ("database", "url"):
            where, line = f"${DATABASE_URL_VARIABLE} (for database.url)", None
        else:
            where, line = format_path(loc), line_of(parsed.lines, loc)
        problems.append(Problem(path, message, line=line, where=where))
    broken = parsed.broken_lines
    problems = [p for p in problems if p.where is None or p.line not in broken]
    if problems or settings is None:
        problems.sort(key=lambda problem: problem.line or 0)
        raise ConfigError(problems)
    settings._source = path
    settings._state_dir = state_dir
    return settings


def _database_url_from_environment(
    data: dict[str, Any], environ: Mapping[str, str]
) -> tuple[dict[str, Any], bool]:
    """``$FOLLOWUPD_DATABASE_URL`` stands for ``[database] url`` when the file sets none.

    Several instances, or a container, can then share one config file and be
    pointed at their database from outside.
    """
    url = environ.get(DATABASE_URL_VARIABLE)
    section = data.get("database", {})
    if not url or not isinstance(section, dict) or "url" in section:
        return data, False
    return {**data, "database": {**section, "url": url}}, True


def _explain(detail: ErrorDetails, loc: KeyPath) -> str:
    if detail["type"] == "extra_forbidden":
        message = f"unknown key {loc[-1]!r}"
        known = _keys_at(Settings, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
        if close:
            message += f"; did you mean {close[0]!r}?"
        elif known:
            message += f"; known keys here: {', '.join(sorted(known))}"
        return message
    if detail["type"] == "missing":
        return "missing required key"
    if detail["type"] == "value_error":
        return str(detail["msg"]).removeprefix("Value error, ")
    message = str(detail["msg"])
    shown = detail.get("input")
    if isinstance(shown, str | int | float | bool) and "url" not in loc and len(str(shown)) < 60:
        message += f" (got {shown!r})"
    return message


def _keys_at(model: type[BaseModel], loc: KeyPath) -> list[str]:
    """The keys a table at `loc` accepts, for "did you mean" suggestions."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        is_model = isinstance(current, type) and issubclass(current, BaseModel)
        fields = current.model_fields.items() if is_model else ()
        field = next((field for name, field in fields if (field.alias or name) == part), None)
        if field is None:
            return []
        current = _model_in(field.annotation)
        if current is None:
            return []
    if not (isinstance(current, type) and issubclass(current, BaseModel)):
        return []
    return [field.alias or name for name, field in current.model_fields.items()]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model class inside ``X | None``, ``tuple[X, ...]`` and the like."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for argument in typing.get_args(annotation):
            found = _model_in(argument)
            if found is not None:
                return found
    return None
