"""Validated types shared by the config file and the data file schemas."""

from __future__ import annotations

import re
import types
import typing
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints, ValidationInfo

from followupd.config.addresses import normalized, split_mailbox

Language = Literal["fr", "en"]
LANGUAGES: tuple[Language, ...] = ("fr", "en")

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class StrictModel(BaseModel):
    """A model that refuses unknown keys, so a typo is an error and not a silent default."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _time_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ValueError, KeyError, OSError):
        message = f"unknown time zone {name!r}; use an IANA name like 'Europe/Paris'"
        raise ValueError(message) from None
    return name


@cache
def _countries() -> frozenset[str]:
    """The codes `holidays` knows, aliases included, from its registry.

    holidays.list_supported_countries() would import all of its 200 country
    modules to list their subdivisions: a second of every command's start-up.
    """
    from holidays.registry import EntityLoader  # 16 ms: for a config that names a country

    return frozenset(EntityLoader.get_country_codes(include_aliases=True))


def _country(code: str) -> str:
    code = code.upper()
    if code not in _countries():
        raise ValueError(f"unknown country {code!r}; use an ISO 3166 code like 'FR'")
    return code


def _single_line(text: str) -> str:
    """Text that ends up in mail headers or calendar fields may not break lines."""
    if _CONTROL.search(text):
        raise ValueError("must not contain line breaks or control characters")
    return text


_PHONE = re.compile(r"\+?[0-9 ().\-/\u00a0]+")
PHONE_DIGITS = (3, 20)  # what a tel: link can be dialled from (E.164 has at most 15)


def _phone(text: str) -> str:
    """A phone number as written ("+33 6 12 34 56 78", "(212) 555-0100"): digits, a leading
    plus, spaces, dots, hyphens, slashes and brackets; it becomes a ``tel:`` link."""
    digits = sum(character.isdigit() for character in text)
    low, high = PHONE_DIGITS
    if not _PHONE.fullmatch(text.strip()) or not low <= digits <= high:
        raise ValueError(
            f"expected a phone number like '+33 6 12 34 56 78' ({low} to {high} digits, "
            "a leading +, spaces, dots, hyphens, slashes or brackets)"
        )
    return text


def _lines(text: str) -> str:
    """Several lines (a postal address): line breaks allowed, other control characters not;
    blank lines and the spaces around each line are dropped."""
    if re.search(r"[\x00-\x08\x0b-\x1f\x7f]", text.replace("\r\n", "\n")):
        raise ValueError("must not contain control characters other than line breaks")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise ValueError("must not be blank")
    return "\n".join(lines)


def _email(address: str) -> str:
    """An address checked by email-validator, in the form it normalises to (config.addresses)."""
    return normalized(address)


def _mailbox(value: str) -> str:
    """``Name <address>`` or a bare address, as in a From header; kept as written."""
    _single_line(value)
    split_mailbox(value)
    return value


def _existing_directory(value: Path, info: ValidationInfo) -> Path:
    """A directory that exists; a relative one is taken from the config file's directory."""
    base = (info.context or {}).get("config_dir")
    if not value.is_absolute() and base is not None:
        value = Path(base) / value
    if not value.is_dir():
        raise ValueError(f"{value} is not a directory")
    return value


def _under_state_directory(value: Path, info: ValidationInfo) -> Path:
    """A relative path is taken from the state directory (the SQLite file, the feed tokens)."""
    state_dir = (info.context or {}).get("state_dir")
    return value if value.is_absolute() or state_dir is None else Path(state_dir) / value


def _owner_key(value: str) -> str:
    """Short, and safe in a file name (``feed-KEY.token``) and a calendar name."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,39}", value):
        raise ValueError("must be a short name of a-z, 0-9, - and _, like 'claire'")
    return value


TimeZoneName = Annotated[str, AfterValidator(_time_zone)]
Country = Annotated[str, AfterValidator(_country)]
SingleLine = Annotated[str, StringConstraints(min_length=1), AfterValidator(_single_line)]
# a postal address, one line per line ("12 rue des Lilas\n69003 Lyon")
Lines = Annotated[str, StringConstraints(max_length=1000), AfterValidator(_lines)]
Email = Annotated[str, AfterValidator(_email)]
Phone = Annotated[str, StringConstraints(max_length=40), AfterValidator(_phone)]
Mailbox = Annotated[str, AfterValidator(_mailbox)]
Slug = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=120)]
Directory = Annotated[Path, AfterValidator(_existing_directory)]
StatePath = Annotated[Path, AfterValidator(_under_state_directory)]
OwnerKey = Annotated[str, AfterValidator(_owner_key)]


def model_in(annotation: Any) -> type[BaseModel] | None:
    """The model class inside ``X | None``, ``tuple[X, ...]`` and the like."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for argument in typing.get_args(annotation):
            found = model_in(argument)
            if found is not None:
                return found
    return None
