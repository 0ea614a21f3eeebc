"""Reading the config file: every problem at once, each with the file, the line and the key.

Secrets are named by a file or an environment variable, read only when needed,
and never printed.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ValidationError,
)
from pydantic_core import ErrorDetails

from followupd.config.discovery import state_directory
from followupd.config.settings import Settings
from followupd.config.toml_positions import KeyPath, format_path, line_of, loads_tolerant
from followupd.config.types import model_in
from followupd.errors import ConfigError, Problem

DATABASE_URL_VARIABLE = "FOLLOWUPD_DATABASE_URL"


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
            # "[key]" marks a bad key of a table of free keys: the key itself is the place
            loc = tuple(
                part for part in detail["loc"] if isinstance(part, str | int) and part != "[key]"
            )
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
        current = model_in(field.annotation)
        if current is None:
            return []
    if not (isinstance(current, type) and issubclass(current, BaseModel)):
        return []
    return [field.alias or name for name, field in current.model_fields.items()]
