"""Where things are in a JSON text, so that a data file's errors can name a line.

`json` gives values but no positions. This scans a text `json.loads` has
already read, for the line of every member and element, keyed by the path a
validator reports (``("invoices", 0, "amount")``), as
`followupd.config.toml_positions` does for TOML. A member's line is its key's.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from dataclasses import dataclass, field

from followupd.config.toml_positions import KeyPath

_SPACE = re.compile(r"[ \t\n\r]*")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
# a number or a literal, as json.loads reads them (NaN and Infinity too)
_SCALAR = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?|true|false|null|NaN|-?Infinity")


@dataclass
class JsonPositions:
    lines: dict[KeyPath, int]  # the line (from 1) of every member and element, by path
    # each member whose key its object has already, by path, with its line: json.loads
    # keeps the last silently, where TOML refuses a key given twice
    again: list[tuple[KeyPath, int]] = field(default_factory=list)


def json_positions(text: str) -> JsonPositions:
    """Where the members and elements of the valid JSON `text` are.

    Empty if the text is nested too deeply to walk (json.loads read it anyway).
    """
    scanner = _Scanner(text)
    try:
        scanner.value(0, ())
    except (RecursionError, IndexError, ValueError):  # not for a text json.loads read
        return JsonPositions({})
    return JsonPositions(scanner.lines, scanner.again)


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.newlines = [match.start() for match in re.finditer("\n", text)]
        self.lines: dict[KeyPath, int] = {}
        self.again: list[tuple[KeyPath, int]] = []

    def line(self, position: int) -> int:
        return bisect_right(self.newlines, position - 1) + 1

    def skip(self, position: int) -> int:
        found = _SPACE.match(self.text, position)
        return found.end() if found else position

    def value(self, position: int, path: KeyPath) -> int:
        """Where the value at `position` ends; the lines of what it holds recorded."""
        text = self.text
        position = self.skip(position)
        opening = text[position]
        if opening == "{":
            return self.members(position + 1, path)
        if opening == "[":
            return self.elements(position + 1, path)
        scalar = (_STRING if opening == '"' else _SCALAR).match(text, position)
        if scalar is None:
            raise ValueError(f"no JSON value at {position}")
        return scalar.end()

    def members(self, position: int, path: KeyPath) -> int:
        position = self.skip(position)
        if self.text[position] == "}":
            return position + 1
        while True:
            position = self.skip(position)
            quoted = _STRING.match(self.text, position)
            if quoted is None:
                raise ValueError(f"no member at {position}")
            key: str = json.loads(quoted.group())
            line = self.line(position)
            colon = self.skip(quoted.end())
            if (*path, key) in self.lines:
                self.again.append(((*path, key), line))
            position = self.skip(self.value(colon + 1, (*path, key)))
            self.lines[(*path, key)] = line
            if self.text[position] == "}":
                return position + 1
            position += 1  # the comma

    def elements(self, position: int, path: KeyPath) -> int:
        position = self.skip(position)
        if self.text[position] == "]":
            return position + 1
        index = 0
        while True:
            position = self.skip(position)
            self.lines[(*path, index)] = self.line(position)
            position = self.skip(self.value(position, (*path, index)))
            if self.text[position] == "]":
                return position + 1
            position, index = position + 1, index + 1
