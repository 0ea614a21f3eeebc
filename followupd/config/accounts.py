"""Servers followupd logs in to: where they are, and the password each needs.

A password is never written in the config: ``password_file`` names a file
(a systemd credential, say) and ``password_env`` an environment variable. It
is read only when a connection needs it, and never printed.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

from pydantic import ValidationInfo, field_validator, model_validator

from followupd.config.types import SingleLine, StrictModel
from followupd.errors import ConfigError, Problem

LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


class Secret:
    """A password named by a file or an environment variable; its value is never shown."""

    def __init__(self, where: str, file: Path | None, env: str | None) -> None:
        self.where = where
        self.file = file
        self.env = env

    def __repr__(self) -> str:
        return f"<secret {self.where}: {self.describe()}>"

    def describe(self) -> str:
        if self.file is not None:
            return f"from file {self.file}"
        return f"from ${self.env}" if self.env else "not set"

    def reveal(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The secret's value, read now; a missing source is a config error."""
        environ = os.environ if environ is None else environ
        if self.file is not None:
            try:
                return self.file.read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as error:
                reason = error.strerror or type(error).__name__
                raise ConfigError(
                    [Problem(self.file, f"cannot read secret: {reason}", where=self.where)]
                ) from None
        if self.env:
            if self.env not in environ:
                problem = Problem(Path(f"${self.env}"), "environment variable is not set")
                raise ConfigError([Problem(problem.file, problem.message, where=self.where)])
            return environ[self.env]
        return None


class WithPassword(StrictModel):
    """A section whose password comes from ``password_file`` or ``password_env``."""

    password_file: Path | None = None
    password_env: SingleLine | None = None

    @field_validator("password_file")
    @classmethod
    def _relative_to_config(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        base = (info.context or {}).get("config_dir")
        if value is not None and not value.is_absolute() and base is not None:
            return Path(base) / value
        return value

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if self.password_file is not None and self.password_env is not None:
            raise ValueError("set password_file or password_env, not both")
        return self

    def password(self, section: str) -> Secret:
        return Secret(f"{section}.password", self.password_file, self.password_env)

    @property
    def has_password(self) -> bool:
        return self.password_file is not None or self.password_env is not None


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    return _loopback_address(host)


def listens_on_loopback(host: str) -> bool:
    """Whether a listener bound to `host` is reachable from this machine only.

    ``localhost`` (RFC 6761 keeps it on loopback), 127.0.0.0/8 and ::1; any
    other name may resolve anywhere, and 0.0.0.0 or :: is every interface.
    """
    return host.lower() == "localhost" or _loopback_address(host)


def _loopback_address(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 is 127.0.0.1
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


class CaldavAccount(WithPassword):
    """A CalDAV server and login: ``[caldav]``'s, or an owner's own ``[owners.caldav]``."""

    url: str
    username: SingleLine | None = None
    ca_file: Path | None = None

    @field_validator("url")
    @classmethod
    def _secure_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL such as 'https://dav.example.net/'")
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            raise ValueError("plain http is only allowed on loopback: use https")
        return value
