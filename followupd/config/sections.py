"""The sections of the config file other than the owners and the rules, with their defaults."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import time
from pathlib import Path
from typing import Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    Field,
    StrictBool,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from followupd.config.accounts import CaldavAccount, WithPassword, is_loopback, listens_on_loopback
from followupd.config.types import Directory, Mailbox, SingleLine, StatePath, StrictModel

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DEFAULT_WRITE_CALENDAR = "followupd"


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


MAX_SMTP_CONNECTIONS = 32


class Smtp(WithPassword):
    """``[smtp]``: where client emails go; without it they go to a Maildir."""

    host: SingleLine
    port: StrictInt | None = Field(None, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: SingleLine | None = None
    sender: Mailbox | None = Field(None, alias="from")
    timeout_seconds: float = Field(60.0, gt=0, le=600)
    # a relay on the same machine takes tens of thousands a minute; a provider, far fewer
    rate_per_minute: StrictInt = Field(60, ge=1, le=10_000_000)
    # SMTP connections a delivery pass keeps open side by side: providers cap them (often
    # at 2 to 10 per account), so the default stays small
    connections: StrictInt = Field(2, ge=1, le=MAX_SMTP_CONNECTIONS)
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


class FeedSection(StrictModel):
    """``[feed]``: the HTTP listener for the iCalendar feed, health and metrics.

    It speaks plain HTTP, so it listens on loopback unless ``allow_remote``
    says otherwise (then behind a TLS reverse proxy, say, and with a warning
    at start). A host name other than ``localhost`` is not loopback: it may
    resolve anywhere. ``public_url``, the origin that proxy serves it at, is
    then the origin of the links to the feed's files, whatever each request's
    Host and proxy headers say.
    """

    allow_remote: StrictBool = False  # before `listen`, whose check reads it
    listen: str = "127.0.0.1:8731"
    token_file: StatePath = Field(Path("feed.token"), validate_default=True)
    public_url: str | None = None  # "https://calendar.example.net", kept as scheme://host[:port]

    @field_validator("public_url")
    @classmethod
    def _origin(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.strip())
        where = re.fullmatch(
            r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)(:([0-9]{1,5}))?",
            parts.netloc,
        )
        if (
            parts.scheme.lower() not in ("http", "https")
            or where is None
            or not 0 < int(where.group(4) or 80) < 65536
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
            or "?" in value
            or "#" in value
        ):
            raise ValueError(
                "must be the origin the feed is served at, such as "
                "'https://calendar.example.net' or 'https://example.net:8443': "
                "http:// or https://, a host, maybe a port, and no path"
            )
        return f"{parts.scheme.lower()}://{parts.netloc.lower()}"

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


class ServiceSection(StrictModel):
    """``[service]``: how often `followupd run` does each of its passes, and what it keeps."""

    sync_every_seconds: StrictInt = Field(300, ge=10, le=86_400)
    evaluate_every_seconds: StrictInt = Field(900, ge=10, le=86_400)
    housekeeping_every_seconds: StrictInt = Field(3600, ge=60, le=86_400)
    # sent, cancelled and expired follow-ups older than this are deleted; it is
    # longer than any rule's grace, so a deleted follow-up can never come back
    retention_days: StrictInt = Field(400, ge=90, le=36_500)
    drain_seconds: StrictInt = Field(20, ge=1, le=300)  # in-flight deliveries on stop
