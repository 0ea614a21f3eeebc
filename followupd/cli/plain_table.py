"""A table as the command line's rich tables print into a pipe, byte for byte, without rich.

`followupd plan` into a pipe spent ~60 ms laying out its table with rich (and ~15 ms
importing it): here the same layout for what a pipe shows, plain text. Only the tables
`render._table` makes (a header, no title, no edge, fold overflow, no colour) of cells
whose every character is one cell wide and which rich would print as they are: for
anything else `lay_out` answers None and rich prints the table.

The layout follows rich 15's (Table._calculate_column_widths, _collapse_widths,
rich._ratio.ratio_reduce, rich._wrap.divide_line, Text.wrap): tests/test_plain_table.py
compares the two on many tables.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from itertools import pairwise

_WORD = re.compile(r"\s*\S+\s*")
_TRAILING_SPACE = re.compile(r"\s+$")
# what rich takes for an emoji's code (":warning:"), as rich._emoji_replace finds them: rich
# prints the text unless each name found has a slash, which no emoji's has ("http://h:80/")
_EMOJI_CODE = re.compile(r"(:(\S*?)(?:(?:\-)(emoji|text))?:)")
NO_BREAK_SPACES = "\u00a0\u202f"  # spaces to rich as to Python: they break lines
HEAD_VERTICAL, HEAD_ROW, HEAD_CROSS, VERTICAL = "┃", "━", "╇", "│"  # rich's box.HEAVY_HEAD


def plain_pipe() -> bool:
    """Whether stdout is a pipe or a file into which rich writes UTF-8 without colour."""
    if sys.stdout.isatty():
        return False
    if os.environ.get("TTY_COMPATIBLE") == "1" or os.environ.get("FORCE_COLOR"):
        return False
    return (getattr(sys.stdout, "encoding", None) or "").lower().startswith("utf")


def _one_cell_wide(char: str) -> bool:
    """Printable (or a no-break space, as French amounts have), one cell wide: a
    conservative set."""
    code = ord(char)
    if 0x20 <= code <= 0x7E or char in NO_BREAK_SPACES:
        return True
    return char.isprintable() and (
        0xA1 <= code < 0x300
        or 0x2010 <= code <= 0x2027
        or 0x2030 <= code <= 0x205E
        or 0x20A0 <= code <= 0x20C0
    )


def plain_enough(text: str) -> bool:
    """Whether `text` is printed by rich as it is, each character one cell wide."""
    return (text.isprintable() if text.isascii() else all(map(_one_cell_wide, text))) and (
        ":" not in text or all("/" in code[2] for code in _EMOJI_CODE.finditer(text))
    )


def plain_line(text: str, width: int) -> bool:
    """Whether rich prints `text` into a `width`-cell pipe as it is, on one line: plain
    enough, not wider, no space at either end (rich wraps and trims)."""
    return len(text) <= width and text == text.strip() and plain_enough(text)


def _widest(text: str, width: int, extra: int) -> int:
    """rich's Measurement.get(...).maximum of a cell: the text in `extra` cells of padding."""
    if width < 1:
        return 0
    if width - extra < 1:
        return width
    return min(min(len(text), width) + extra, width)


def _column_width(cells: Sequence[str], width: int, extra: int) -> int:
    return min(max(_widest(cell, width, extra) for cell in cells), width)


def _ratio_reduce(
    total: int, ratios: list[int], maximums: list[int], values: list[int]
) -> list[int]:
    ratios = [ratio if maximum else 0 for ratio, maximum in zip(ratios, maximums, strict=True)]
    total_ratio = sum(ratios)
    if not total_ratio:
        return values[:]
    remaining = total
    result = []
    for ratio, maximum, value in zip(ratios, maximums, values, strict=True):
        if ratio and total_ratio > 0:
            distributed = min(maximum, round(ratio * remaining / total_ratio))
            result.append(value - distributed)
            remaining -= distributed
            total_ratio -= ratio
        else:
            result.append(value)
    return result


def _collapse(widths: list[int], max_width: int) -> list[int]:
    """Narrow the widest columns first (every column may wrap) till the table fits."""
    total = sum(widths)
    excess = total - max_width
    while total and excess > 0:
        widest = max(widths)
        second = max(width if width != widest else 0 for width in widths)
        difference = widest - second
        ratios = [1 if width == widest else 0 for width in widths]
        if not difference:
            break
        widths = _ratio_reduce(excess, ratios, [min(excess, difference)] * len(widths), widths)
        total = sum(widths)
        excess = total - max_width
    return widths


def _breaks(text: str, width: int) -> list[int]:
    """Where rich's divide_line (fold) breaks `text` to fit in `width` cells."""
    breaks: list[int] = []
    offset = 0
    for match in _WORD.finditer(text):
        start, word = match.start(), match.group(0)
        length = len(word.rstrip())
        if width - offset >= length:
            offset += len(word)
        elif length > width:
            chunks = [word[at : at + width] for at in range(0, len(word), width)]
            for index, chunk in enumerate(chunks):
                if start:
                    breaks.append(start)
                if index == len(chunks) - 1:
                    offset = len(chunk)
                else:
                    start += len(chunk)
        elif offset and start:
            breaks.append(start)
            offset = len(word)
    return breaks


def _wrap(text: str, width: int) -> list[str]:
    """`text` folded into lines of exactly `width` cells, as rich's Text.wrap justifies left."""
    edges = [0, *_breaks(text, width), len(text)]
    lines = []
    for start, end in pairwise(edges):
        line = text[start:end]
        if len(line) > width and (space := _TRAILING_SPACE.search(line)) is not None:
            line = line[: len(line) - min(len(space.group(0)), len(line) - width)]
        lines.append(line[:width].ljust(width))
    return lines


def _cell_lines(text: str, width: int, left: int, right: int) -> list[str]:
    inner = width - left - right
    return [" " * left + line + " " * right for line in _wrap(text, inner)]


def lay_out(headers: Sequence[str], rows: Sequence[Sequence[str]], width: int) -> str | None:
    """The table rich prints into a `width`-cell pipe, ending in a newline; None when rich
    must print it (a cell rich would change, or columns too narrow for their padding)."""
    columns = list(zip(headers, *rows, strict=True))
    if not all(plain_enough(cell) for column in columns for cell in column):
        return None
    last = len(columns) - 1
    pads = [(0 if index == 0 else 1, 0 if index == last else 1) for index in range(last + 1)]
    max_width = width - last  # the vertical lines between columns
    widths = [
        _column_width(column, max_width, sum(pad)) or 1
        for column, pad in zip(columns, pads, strict=True)
    ]
    if sum(widths) > max_width:
        widths = _collapse(widths, max_width)
        if sum(widths) > max_width:
            widths = _ratio_reduce(sum(widths) - max_width, [1] * len(widths), widths, widths)
        widths = [
            _column_width(column, narrowed, sum(pad))
            for column, narrowed, pad in zip(columns, widths, pads, strict=True)
        ]
    if any(size - sum(pad) < 1 for size, pad in zip(widths, pads, strict=True)):
        return None
    out: list[str] = []
    for number, row in enumerate(zip(*columns, strict=True)):
        cells = [
            _cell_lines(text, size, *pad) for text, size, pad in zip(row, widths, pads, strict=True)
        ]
        height = max(map(len, cells))
        for cell, size in zip(cells, widths, strict=True):
            blank = [" " * size] * (height - len(cell))
            if number == 0:
                cell[:0] = blank  # a header at the bottom of its row
            else:
                cell.extend(blank)  # a row's cells at the top
        divider = HEAD_VERTICAL if number == 0 else VERTICAL
        out.extend(divider.join(line) for line in zip(*cells, strict=True))
        if number == 0:
            out.append(HEAD_CROSS.join(HEAD_ROW * size for size in widths))
    return "".join(f"{line}\n" for line in out)
