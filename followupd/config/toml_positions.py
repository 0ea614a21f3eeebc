"""Where things are in a TOML text, so that errors can name a line.

`tomllib` gives values but no positions. This module scans the same text for
the line of every key, table header and array element, keyed by the path a
validator reports (``("rules", "invoice_due", "steps", 2)``). It also parses
a text that has syntax errors by blanking each offending line in turn, so one
run reports every syntax error along with the problems of the rest of the file.
"""

from __future__ import annotations

import ast
import contextlib
import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

KeyPath = tuple[str | int, ...]

_ERROR_POSITION = re.compile(r"\(at line (\d+), column \d+\)")
_MAX_SYNTAX_ERRORS = 50
_ASSIGNMENT = re.compile(r"^(\s*[A-Za-z0-9_-]+)\s*=(.*)$")
# a value shaped like a TOML date or date-time, whatever its figures
_DATE_LIKE = re.compile(
    r"^\s*(\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?)\s*(#.*)?$"
)
_DECLARED_TWICE = re.compile(r"^Cannot declare (\(.*\)) twice$")
# A broken table header is replaced by a header of this table, dropped after parsing: the
# keys below it are then neither read nor blamed on the table before it. As a value (a
# line of a multi-line array) it is invalid again, and the line is blanked.
_SET_ASIDE = "followupd-set-aside-line-"


def _impossible_date(line: str) -> str | None:
    """Why the value of `line` is no date, when it is shaped like one (``2026-13-01``).

    tomllib reports a date that does not exist as bad syntax ("Expected newline
    or end of document"), which points nowhere near the month 13.
    """
    assignment = _ASSIGNMENT.match(line)
    shaped = _DATE_LIKE.match(assignment.group(2)) if assignment else None
    if assignment is None or shaped is None:
        return None
    value = shaped.group(1)
    try:
        datetime.fromisoformat(value)
    except ValueError as error:
        return f"{assignment.group(1).strip()}: invalid date {value}: {error}"
    return None


def format_path(path: KeyPath) -> str:
    """``("rules", "invoice_due", "steps", 2)`` -> ``rules.invoice_due.steps[2]``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            shown = part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else f'"{part}"'
            text += f".{shown}" if text else shown
    return text


def line_of(lines: dict[KeyPath, int], path: KeyPath) -> int | None:
    """The line of `path`, or of its nearest located ancestor."""
    for end in range(len(path), 0, -1):
        found = lines.get(path[:end])
        if found is not None:
            return found
    return None


@dataclass
class Parsed:
    """A TOML text read as far as possible: its data, syntax errors and key positions."""

    data: dict[str, Any]
    syntax_errors: list[tuple[int | None, str]]
    lines: dict[KeyPath, int] = field(default_factory=dict)

    @property
    def broken_lines(self) -> set[int]:
        """Lines with a syntax error: other problems found on them would repeat it."""
        return {line for line, _ in self.syntax_errors if line is not None}


def loads_tolerant(text: str) -> Parsed:
    """Parse `text`, repairing each line with a syntax error until the rest parses.

    A broken ``key = value`` line first gets its value quoted, so the key is
    still there (and not reported missing); if that does not parse either, the
    line is blanked. Line numbers never move.
    """
    errors: list[tuple[int | None, str]] = []
    lines = text.split("\n")
    quoted: set[int] = set()
    set_aside: set[int] = set()
    declared_twice: dict[int, KeyPath] = {}  # index in errors -> the table's path
    while True:
        repaired = "\n".join(lines)
        try:
            data = tomllib.loads(repaired)
            return _without_set_aside(data, errors, key_lines(repaired), declared_twice)
        except tomllib.TOMLDecodeError as error:
            message = str(error)
            match = _ERROR_POSITION.search(message)
            reason = _ERROR_POSITION.sub("", message).strip()
            if match is None or len(errors) >= _MAX_SYNTAX_ERRORS:
                errors.append((None, reason))
                return Parsed({}, errors)
            number = int(match.group(1))
            if number > len(lines) or not lines[number - 1].strip():
                errors.append((number, f"TOML syntax error: {reason}"))
                return Parsed({}, errors)  # nothing left to repair: give up on this file
            if number not in quoted and number not in set_aside:
                twice = _table_declared_twice(reason)
                if twice is not None:
                    declared_twice[len(errors)] = twice
                impossible = _impossible_date(lines[number - 1])
                errors.append((number, impossible or f"TOML syntax error: {reason}"))
            assignment = _ASSIGNMENT.match(lines[number - 1])
            if lines[number - 1].lstrip().startswith("[") and number not in set_aside:
                set_aside.add(number)
                lines[number - 1] = f"[{_SET_ASIDE}{number}]"
            elif assignment and number not in quoted:
                quoted.add(number)
                raw = assignment.group(2).strip().replace("\\", "\\\\").replace('"', '\\"')
                lines[number - 1] = f'{assignment.group(1)} = "{raw}"'
            else:
                lines[number - 1] = ""
        except (ValueError, RecursionError) as error:  # a number too long, nesting too deep
            reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)
            errors.append((None, f"TOML cannot be read: {reason}"))
            return Parsed({}, errors)


def _table_declared_twice(reason: str) -> KeyPath | None:
    """The table of tomllib's "Cannot declare ('a', 'b') twice", if that is the reason."""
    match = _DECLARED_TWICE.match(reason)
    if match is None:
        return None
    try:
        path = ast.literal_eval(match.group(1))
    except (ValueError, SyntaxError):
        return None
    if not isinstance(path, tuple) or not all(isinstance(part, str) for part in path):
        return None
    return path


def _without_set_aside(
    data: dict[str, Any],
    errors: list[tuple[int | None, str]],
    lines: dict[KeyPath, int],
    declared_twice: dict[int, KeyPath],
) -> Parsed:
    """Drop the tables that stood in for broken headers; say where a twice-declared one is."""
    for key in [key for key in data if key.startswith(_SET_ASIDE)]:
        del data[key]
    lines = {
        path: line
        for path, line in lines.items()
        if not (isinstance(path[0], str) and path[0].startswith(_SET_ASIDE))
    }
    for index, path in declared_twice.items():
        number, _ = errors[index]
        message = f"TOML syntax error: Cannot declare [{format_path(path)}] twice"
        first = lines.get(path)
        if first is not None:
            message += f"; declared first at line {first}; add the keys there"
        errors[index] = (number, message)
    return Parsed(data, errors, lines)


def key_lines(text: str) -> dict[KeyPath, int]:
    """Map every key path of a valid TOML text to the line where it is written."""
    scanner = _Scanner(text)
    # not valid TOML (or nested too deep): keep what was found
    with contextlib.suppress(IndexError, ValueError, RecursionError):
        scanner.document()
    return scanner.found


class _Scanner:
    """A small recursive scanner over TOML that records positions only."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.found: dict[KeyPath, int] = {}
        self.array_index: dict[KeyPath, int] = {}

    # -- characters ------------------------------------------------------------
    def peek(self, size: int = 1) -> str:
        return self.text[self.pos : self.pos + size]

    def advance(self, size: int = 1) -> None:
        self.line += self.text.count("\n", self.pos, self.pos + size)
        self.pos += size

    def ensure_progress(self, start: int) -> None:
        if self.pos == start or self.pos > len(self.text):
            raise IndexError("scanner is stuck")

    def skip_blanks(self, newlines: bool) -> None:
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char in " \t\r" or (newlines and char == "\n"):
                self.advance()
            elif char == "#":
                end = self.text.find("\n", self.pos)
                self.advance((len(self.text) if end < 0 else end) - self.pos)
            else:
                return

    # -- structure -------------------------------------------------------------
    def document(self) -> None:
        table: KeyPath = ()
        while True:
            self.skip_blanks(newlines=True)
            if self.pos >= len(self.text):
                return
            start = self.pos
            if self.peek() == "[":
                table = self.header()
            else:
                self.key_value(table)
            self.ensure_progress(start)

    def header(self) -> KeyPath:
        line = self.line
        is_array = self.peek(2) == "[["
        self.advance(2 if is_array else 1)
        self.skip_blanks(newlines=False)
        parts = self.key()
        self.skip_blanks(newlines=False)
        self.advance(2 if is_array else 1)
        resolved: KeyPath = ()
        for number, part in enumerate(parts):
            resolved += (part,)
            last = number == len(parts) - 1
            if last and is_array:
                index = self.array_index.get(resolved, -1) + 1
                self.array_index[resolved] = index
                self.found.setdefault(resolved, line)
                resolved += (index,)
            elif resolved in self.array_index:
                resolved += (self.array_index[resolved],)
        self.found[resolved] = line
        return resolved

    def key_value(self, table: KeyPath) -> None:
        line = self.line
        parts = self.key()
        for end in range(1, len(parts)):  # a dotted key also defines its tables
            self.found.setdefault(table + tuple(parts[:end]), line)
        path = table + tuple(parts)
        self.found[path] = line
        self.skip_blanks(newlines=False)
        self.advance()  # "="
        self.skip_blanks(newlines=False)
        self.value(path)

    def key(self) -> list[str]:
        parts: list[str] = []
        while True:
            self.skip_blanks(newlines=False)
            char = self.peek()
            if char in "\"'":
                parts.append(self.string())
            else:
                start = self.pos
                while self.pos < len(self.text) and (
                    self.text[self.pos].isalnum() or self.text[self.pos] in "_-"
                ):
                    self.advance()
                parts.append(self.text[start : self.pos])
            self.skip_blanks(newlines=False)
            if self.peek() != ".":
                return parts
            self.advance()

    def value(self, path: KeyPath) -> None:
        char = self.peek()
        if char in "\"'":
            self.string()
        elif char == "[":
            self.array(path)
        elif char == "{":
            self.inline_table(path)
        else:
            while self.pos < len(self.text) and self.text[self.pos] not in ",]}\n#":
                self.advance()

    def array(self, path: KeyPath) -> None:
        self.advance()
        index = 0
        while True:
            start = self.pos
            self.skip_blanks(newlines=True)
            if self.peek() == "]":
                self.advance()
                return
            self.found[(*path, index)] = self.line
            self.value((*path, index))
            self.skip_blanks(newlines=True)
            if self.peek() == ",":
                self.advance()
                index += 1
            self.ensure_progress(start)

    def inline_table(self, path: KeyPath) -> None:
        self.advance()
        while True:
            start = self.pos
            self.skip_blanks(newlines=False)
            if self.peek() == "}":
                self.advance()
                return
            self.key_value(path)
            self.skip_blanks(newlines=False)
            if self.peek() == ",":
                self.advance()
            self.ensure_progress(start)

    def string(self) -> str:
        quote = self.peek()
        if self.peek(3) == quote * 3:
            end = self.pos + 3
            while not self.text.startswith(quote * 3, end):
                end += 2 if quote == '"' and self.text[end] == "\\" else 1
            while self.text.startswith(quote, end + 3):  # up to two quotes may close it
                end += 1
            raw = self.text[self.pos + 3 : end]
            self.advance(end + 3 - self.pos)
            return raw
        start = self.pos + 1
        cursor = start
        while self.text[cursor] != quote:
            cursor += 2 if quote == '"' and self.text[cursor] == "\\" else 1
        raw = self.text[start:cursor]
        self.advance(cursor + 1 - self.pos)
        if quote == '"':
            try:
                return str(tomllib.loads(f'k = "{raw}"')["k"])
            except tomllib.TOMLDecodeError:
                return raw
        return raw
