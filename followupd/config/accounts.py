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
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

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


# how an IMAP connection is protected: TLS from the first byte (imaps://), STARTTLS
# before the login (imap://), or nothing at all (imap://, on loopback only)
ImapSecurity = Literal["tls", "starttls", "none"]
IMAP_PORTS: dict[str, int] = {"tls": 993, "starttls": 143, "none": 143}


def _folder_name(name: str) -> str:
    """A folder as the server names it; INBOX is case-insensitive (RFC 3501), so spelled so."""
    return "INBOX" if name.upper() == "INBOX" else name


FolderName = Annotated[SingleLine, AfterValidator(_folder_name)]


class ImapAccount(WithPassword):
    """A mailbox read for replies and sent messages: ``[imap]``'s, or an owner's ``[owners.imap]``.

    ``imaps://`` speaks TLS from the first byte (port 993), ``imap://`` must
    switch to TLS with STARTTLS before the login (port 143); the certificate is
    verified either way, against ``ca_file`` when one is given. IMAP without
    TLS is only for a server on this machine: ``imap://`` to a loopback host
    with ``security = "none"``. The mailbox is only read, never changed.
    """

    url: str
    security: ImapSecurity | None = None  # after `url`, whose scheme it must agree with
    username: SingleLine
    ca_file: Path | None = None
    folders: tuple[FolderName, ...] = Field(("INBOX",), min_length=1)
    sent_folder: FolderName | None = None  # None: the folder marked \Sent, else "Sent"

    @field_validator("url")
    @classmethod
    def _imap_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("imap", "imaps") or not parts.hostname:
            raise ValueError("must be an IMAP URL such as 'imaps://imap.example.net/'")
        if parts.username is not None or parts.password is not None:
            raise ValueError(
                "put the user in username and the password in password_file or "
                "password_env, not in the URL"
            )
        try:
            port = parts.port  # urlsplit checks the port when it is read
        except ValueError:
            port = 0
        if port == 0:
            raise ValueError("the port must be a number from 1 to 65535")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError("name the server only, such as 'imaps://imap.example.net:993/'")
        return value

    @field_validator("security")
    @classmethod
    def _agrees_with_url(cls, value: ImapSecurity | None, info: ValidationInfo) -> str | None:
        url = info.data.get("url")
        if value is None or url is None:  # a wrong URL is reported at `url`
            return value
        parts = urlsplit(url)
        if parts.scheme == "imaps" and value != "tls":
            raise ValueError("imaps:// is TLS from the first byte: use imap:// for starttls")
        if parts.scheme == "imap" and value == "tls":
            raise ValueError("imap:// starts plain: use imaps:// for TLS, or starttls")
        if value == "none" and not is_loopback(parts.hostname or ""):
            raise ValueError(
                "IMAP without TLS is only allowed on loopback: use imaps://, or imap:// "
                "with STARTTLS"
            )
        return value

    @field_validator("sent_folder")
    @classmethod
    def _not_listed_twice(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and value in info.data.get("folders", ()):
            raise ValueError(f"{value!r} is in folders too: a folder is read one way only")
        return value

    @field_validator("folders")
    @classmethod
    def _distinct(cls, folders: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(folders)) != len(folders):
            raise ValueError("a folder is listed twice")
        return folders

    @model_validator(mode="after")
    def _a_password(self) -> Self:
        if not self.has_password:
            raise ValueError("an IMAP login needs a password: set password_file or password_env")
        return self

    @property
    def effective_security(self) -> ImapSecurity:
        """As set, else as the URL says: TLS for imaps://, STARTTLS for imap://."""
        if self.security is not None:
            return self.security
        return "tls" if urlsplit(self.url).scheme == "imaps" else "starttls"

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or IMAP_PORTS[self.effective_security]

    @property
    def account(self) -> str:
        """Which mailbox this is, whatever the URL's spelling: ``user@host:port``.

        The store keeps it beside each folder's sync state, so that a config
        pointed at another mailbox starts that folder over.
        """
        return f"{self.username}@{self.host.lower()}:{self.port}"
