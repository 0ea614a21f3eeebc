"""plain_table lays a table out into a pipe byte for byte as rich does, or leaves it to rich."""

from __future__ import annotations

import io
import random

import pytest
from rich.cells import cell_len
from rich.console import Console

from followupd.cli import plain_table
from followupd.cli.render import _table

# what cells are made of: words, runs of spaces, the French text of the templates
LETTERS = "abcdefghij   ——«»é'%.,-\u00a0\u202f"


def by_rich(headers: list[str], rows: list[list[str]], width: int) -> str:
    table = _table(*headers)
    for row in rows:
        table.add_row(*row)
    out = io.StringIO()
    Console(markup=False, width=width, file=out).print(table)
    return out.getvalue()


def random_table(rng: random.Random) -> tuple[list[str], list[list[str]]]:
    def word() -> str:
        return "".join(rng.choice(LETTERS) for _ in range(rng.choice([0, 1, 2, 3, 5, 8, 13, 30])))

    def cell() -> str:
        return " ".join(word() for _ in range(rng.choice([0, 1, 1, 2, 4, 9])))

    columns = rng.randint(1, 6)
    headers = [word() or "h" for _ in range(columns)]
    return headers, [[cell() for _ in range(columns)] for _ in range(rng.randint(0, 5))]


@pytest.mark.parametrize("seed", range(4))
def test_tables_are_laid_out_as_rich_lays_them_out(seed: int) -> None:
    """Wide and narrow: columns that fit, columns narrowed, words folded, headers wrapped."""
    rng = random.Random(seed)
    compared = 0
    for _ in range(300):
        headers, rows = random_table(rng)
        width = rng.choice([10, 20, 40, 80, 160, 200])
        laid_out = plain_table.lay_out(headers, rows, width)
        if laid_out is not None:
            assert laid_out == by_rich(headers, rows, width), (headers, rows, width)
            compared += 1
    assert compared > 200, "most tables are laid out here, not left to rich"


def test_a_plan_row_as_rich_prints_it() -> None:
    headers = ["due", "rule", "to", "subject"]
    subject = "Appeler Sophie Garnier — Reprise des données : l'export de l'ancien CRM est "
    amount = "Facture\u00a0: 1\u202f200 €"  # French typography's no-break spaces
    rows = [
        ["2026-11-23 09:00", "escalate_by_phone", "you (calendar)", subject * 3],
        ["2026-11-24 09:00", "invoice_due", "a@b.example", amount],
    ]
    laid_out = plain_table.lay_out(headers, rows, 160)
    assert laid_out == by_rich(headers, rows, 160)
    assert laid_out is not None and len(laid_out.splitlines()) == 6, "the subject on 3 lines"


def test_every_character_taken_is_one_cell_wide_to_rich() -> None:
    taken = [chr(code) for code in range(0x3000) if plain_table.plain_enough(chr(code))]
    assert len(taken) > 500
    assert [char for char in taken if cell_len(char) != 1] == []


@pytest.mark.parametrize(
    "cell",
    ["a :warning: sign", "日本語", "tab\there", "two\nlines", "e\u0301", "zero\u200bwidth"],
)
def test_what_rich_would_change_or_measure_otherwise_is_left_to_it(cell: str) -> None:
    assert plain_table.lay_out(["subject"], [[cell]], 160) is None


def test_columns_narrower_than_their_padding_are_left_to_rich() -> None:
    assert plain_table.lay_out(["a", "b", "c", "d"], [["x" * 20] * 4], 5) is None


def line_by_rich(text: str, width: int, *, highlight: bool = True) -> str:
    out = io.StringIO()
    Console(markup=False, width=width, file=out).print(text, markup=False, highlight=highlight)
    return out.getvalue()


@pytest.mark.parametrize("seed", range(2))
def test_a_line_taken_as_plain_is_printed_by_rich_as_it_is(seed: int) -> None:
    """Short and long, spaced and not: those `plain_line` takes, rich prints unchanged."""
    rng = random.Random(seed)
    taken = 0
    for _ in range(400):
        words = ["".join(rng.choice(LETTERS + ":/") for _ in range(rng.choice([0, 1, 3, 8, 30])))
                 for _ in range(rng.choice([1, 2, 5, 20, 40]))]  # fmt: skip
        text = " ".join(words)
        width = rng.choice([20, 80, 160])
        if plain_table.plain_line(text, width):
            assert line_by_rich(text, width) == f"{text}\n", (text, width)
            assert line_by_rich(text, width, highlight=False) == f"{text}\n", (text, width)
            taken += 1
    assert taken > 100


@pytest.mark.parametrize(
    "text",
    ["x" * 161, " leading", "trailing ", "a :warning: sign", "tab\there", "日本語",
     "http://h:80/ then :smile:"],
)  # fmt: skip
def test_a_line_rich_would_change_is_left_to_it(text: str) -> None:
    assert not plain_table.plain_line(text, 160)


@pytest.mark.parametrize(
    "text",
    ["skipped http://127.0.0.1:5232/claire/missions/A.ics: mission event 'Audit': line 4",
     "note: calendar 'Perso' (https://dav.example:443/): refused: tried again next time",
     "see http://h:80/ and :/x-emoji: or :a/b:"],
)  # fmt: skip
def test_a_url_is_no_emoji_code_to_rich(text: str) -> None:
    assert plain_table.plain_line(text, 160)
    assert line_by_rich(text, 160) == line_by_rich(text, 160, highlight=False) == f"{text}\n"
