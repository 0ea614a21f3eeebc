"""`followupd.config.toml_positions`: the line of every key, and parsing past syntax errors."""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from followupd.config.toml_positions import KeyPath, format_path, key_lines, line_of, loads_tolerant


def _line(text: str, number: int) -> str:
    return text.split("\n")[number - 1]


# -- key_lines ----------------------------------------------------------------------------


def test_tables_and_keys_are_located() -> None:
    text = """\
top = 1

[owner]
name = "Claire"
email = "claire@cabinet.example"

[rules.invoice_due]
enabled = false
"""
    lines = key_lines(text)
    assert lines == {
        ("top",): 1,
        ("owner",): 3,
        ("owner", "name"): 4,
        ("owner", "email"): 5,
        ("rules", "invoice_due"): 7,
        ("rules", "invoice_due", "enabled"): 8,
    }


def test_dotted_and_quoted_keys() -> None:
    text = """\
[owner]
a.b.c = 3
"quoted key" = 1
'lit.key' = 2
"esc\\"aped" = 4
[ spaced . "dot.ted" ]
x = 5
"""
    assert tomllib.loads(text)["owner"]['esc"aped'] == 4  # the text is valid TOML
    lines = key_lines(text)
    assert lines[("owner", "a", "b", "c")] == 2
    assert lines[("owner", "quoted key")] == 3
    assert lines[("owner", "lit.key")] == 4
    assert lines[("owner", 'esc"aped')] == 5
    assert lines[("spaced", "dot.ted")] == 6
    assert lines[("spaced", "dot.ted", "x")] == 7


def test_arrays_of_tables_nested() -> None:
    text = """\
[[fruit]]
name = "apple"
[[fruit.variety]]
name = "red"
[[fruit.variety]]
name = "green"

[[fruit]]
name = "banana"
[[fruit.variety]]
name = "plantain"
[fruit.physical]
color = "yellow"
"""
    data = tomllib.loads(text)
    assert data["fruit"][1]["variety"][0]["name"] == "plantain"
    lines = key_lines(text)
    assert lines[("fruit",)] == 1  # the array itself: its first element
    assert lines[("fruit", 0)] == 1
    assert lines[("fruit", 0, "name")] == 2
    assert lines[("fruit", 0, "variety", 0)] == 3
    assert lines[("fruit", 0, "variety", 0, "name")] == 4
    assert lines[("fruit", 0, "variety", 1)] == 5
    assert lines[("fruit", 0, "variety", 1, "name")] == 6
    assert lines[("fruit", 1)] == 8
    assert lines[("fruit", 1, "name")] == 9
    # the nested array restarts at 0 under the second [[fruit]]
    assert lines[("fruit", 1, "variety", 0)] == 10
    assert lines[("fruit", 1, "variety", 0, "name")] == 11
    assert ("fruit", 1, "variety", 1) not in lines
    assert lines[("fruit", 1, "physical")] == 12
    assert lines[("fruit", 1, "physical", "color")] == 13


def test_multi_line_array_of_inline_tables_gives_each_element_its_line() -> None:
    text = """\
[rules.invoice_due]
steps = [
  { name = "heads-up", offset_days = -3, audience = "owner" },
  { name = "nudge-1", offset_days = 1, audience = "client" },
  { name = "nudge-2", offset_days = 8, audience = "client" },  # [not] a = table
]
grace_days = 7
"""
    lines = key_lines(text)
    steps = ("rules", "invoice_due", "steps")
    assert lines[steps] == 2
    assert [lines[(*steps, index)] for index in range(3)] == [3, 4, 5]
    assert lines[(*steps, 2, "offset_days")] == 5
    assert lines[(*steps, 0, "audience")] == 3
    assert lines[("rules", "invoice_due", "grace_days")] == 7
    assert (*steps, 3) not in lines


def test_single_line_arrays_and_nested_arrays() -> None:
    text = "a = [ { x = 1 }, { x = 2 } ]\nb = [[1, 2],\n  [3]]\nc = []\nd = {}\ne = 1\n"
    lines = key_lines(text)
    assert lines[("a", 1, "x")] == 1
    assert lines[("b", 0, 1)] == 2
    assert lines[("b", 1, 0)] == 3
    assert lines[("c",)] == 4
    assert lines[("d",)] == 5
    assert lines[("e",)] == 6


def test_multi_line_strings_do_not_shift_lines() -> None:
    text = '''\
basic = """
line one [not.a.table]
fake = "key"
"""
literal = \'\'\'
[[also.not]]
x = 1\'\'\'
quotes = """""quoted"""""
continued = """one \\
  two"""
last = 1
[after]
key = "value"
'''
    data = tomllib.loads(text)
    assert data["quotes"] == '""quoted""'
    lines = key_lines(text)
    assert lines[("basic",)] == 1
    assert lines[("literal",)] == 5
    assert lines[("quotes",)] == 8
    assert lines[("continued",)] == 9
    assert lines[("last",)] == 11
    assert lines[("after",)] == 12
    assert lines[("after", "key")] == 13
    assert ("fake",) not in lines
    assert ("also", "not") not in lines
    assert ("x",) not in lines


def test_comments_with_brackets_and_equals_are_ignored() -> None:
    text = """\
# [owner] = not a table
# [[x]]
a = 1  # b = 2 [c]
s = "a # [b] = c"  # ] }
t = 'C:\\path\\'
[tab]  # [other]
# key = 3
k = [ # [ ]
  1, # ]
  2,
]
"""
    lines = key_lines(text)
    assert lines == {
        ("a",): 3,
        ("s",): 4,
        ("t",): 5,
        ("tab",): 6,
        ("tab", "k"): 8,
        ("tab", "k", 0): 9,
        ("tab", "k", 1): 10,
    }


def test_crlf_line_endings() -> None:
    text = 'a = "x"\r\nb = 1\r\n[t]\r\nc = 2\r\n'
    assert key_lines(text) == {("a",): 1, ("b",): 2, ("t",): 3, ("t", "c"): 4}


def test_inline_tables_with_dotted_keys() -> None:
    text = "a = { b.c = 1, d = 2 }\ne = 3\n"
    lines = key_lines(text)
    assert lines[("a",)] == 1
    assert lines[("a", "b", "c")] == 1
    assert lines[("a", "d")] == 1
    assert lines[("e",)] == 2


def test_dotted_key_locates_the_tables_it_implies() -> None:
    text = "rules.invoic_due.enabled = true\n"
    lines = key_lines(text)
    assert line_of(lines, ("rules", "invoic_due")) == 1


def test_escaped_quote_inside_multi_line_string() -> None:
    text = 'a = """ \\""" \'\'\' """\nb = 1\n'
    assert tomllib.loads(text) == {"a": " \"\"\" ''' ", "b": 1}
    assert key_lines(text) == {("a",): 1, ("b",): 2}


# -- line_of and format_path --------------------------------------------------------------


def test_line_of_exact_and_nearest_ancestor() -> None:
    lines: dict[KeyPath, int] = {
        ("rules",): 1,
        ("rules", "invoice_due"): 4,
        ("rules", "invoice_due", "steps"): 5,
        ("rules", "invoice_due", "steps", 2): 8,
    }
    assert line_of(lines, ("rules", "invoice_due", "steps", 2)) == 8
    assert line_of(lines, ("rules", "invoice_due", "steps", 2, "offset_days")) == 8
    assert line_of(lines, ("rules", "invoice_due", "steps", 7, "name")) == 5
    assert line_of(lines, ("rules", "invoice_due", "grace_days")) == 4
    assert line_of(lines, ("rules", "nope", "x")) == 1
    assert line_of(lines, ("owner", "email")) is None
    assert line_of(lines, ()) is None
    assert line_of({}, ("a",)) is None


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (
            ("rules", "invoice_due", "steps", 2, "offset_days"),
            "rules.invoice_due.steps[2].offset_days",
        ),
        (("smtp", "port"), "smtp.port"),
        (("owner",), "owner"),
        (("fruit", 0, 1), "fruit[0][1]"),
        (("a", "b c", "d.e", "f-g_1"), 'a."b c"."d.e".f-g_1'),
        (("",), '""'),
        ((), ""),
    ],
)
def test_format_path(path: KeyPath, expected: str) -> None:
    assert format_path(path) == expected


# -- loads_tolerant -----------------------------------------------------------------------


def test_loads_tolerant_valid_text() -> None:
    parsed = loads_tolerant('[owner]\nname = "C"\n')
    assert parsed.data == {"owner": {"name": "C"}}
    assert parsed.syntax_errors == []
    assert parsed.lines == {("owner",): 1, ("owner", "name"): 2}


def test_loads_tolerant_reports_every_syntax_error_and_keeps_the_rest() -> None:
    text = """\
[owner]
name = "Claire"
broken line here
email = "claire@cabinet.example"
port = = 3
[business
send_window = "09:00-18:00"
[feed]
listen = "127.0.0.1:8731"
token = "unterminated
last = 1
"""
    parsed = loads_tolerant(text)
    assert [line for line, _ in parsed.syntax_errors] == [3, 5, 6, 10]
    assert all(message.startswith("TOML syntax error: ") for _, message in parsed.syntax_errors)
    assert "=" in parsed.syntax_errors[0][1]
    assert "]" in parsed.syntax_errors[2][1]
    # whatever becomes of the broken lines, every good line is still read
    owner, feed = parsed.data["owner"], parsed.data["feed"]
    assert owner["name"] == "Claire"
    assert owner["email"] == "claire@cabinet.example"
    assert feed["listen"] == "127.0.0.1:8731"
    assert feed["last"] == 1
    # the keys under the broken [business header are set aside, not blamed on [owner]
    assert "send_window" not in owner
    assert list(parsed.data) == ["owner", "feed"]
    # lines are those of the original text: blanking keeps the line count
    assert parsed.lines[("owner", "email")] == 4
    assert ("owner", "send_window") not in parsed.lines
    assert parsed.lines[("feed",)] == 8
    assert parsed.lines[("feed", "last")] == 11


def test_loads_tolerant_duplicate_table_says_where_the_first_one_is() -> None:
    parsed = loads_tolerant("a = 1\n[t]\nb = 1\n[u]\n[t]\nc = 2\n[v]\nd = 3\n")
    assert parsed.syntax_errors == [
        (
            5,
            "TOML syntax error: Cannot declare [t] twice; "
            "declared first at line 2; add the keys there",
        ),
    ]
    # the keys under the second [t] are neither read nor blamed on [u], the table before it
    assert parsed.data == {"a": 1, "t": {"b": 1}, "u": {}, "v": {"d": 3}}
    assert ("u", "c") not in parsed.lines
    assert ("t", "c") not in parsed.lines
    assert parsed.lines[("v", "d")] == 8


def test_loads_tolerant_bracket_line_inside_an_array_is_blanked() -> None:
    parsed = loads_tolerant("a = [\n  [1, 2,,\n]\nb = 1\n")
    assert [line for line, _ in parsed.syntax_errors] == [2]
    assert parsed.data == {"a": [], "b": 1}


def test_loads_tolerant_gives_up_on_unterminated_multi_line_string() -> None:
    text = 'a = 1\nbad = = 2\ns = """\nnever ends\nb = 2\n'
    parsed = loads_tolerant(text)
    assert parsed.data == {}
    assert parsed.lines == {}
    assert parsed.syntax_errors, "the problem is reported"
    assert parsed.syntax_errors[0][0] == 2
    line, message = parsed.syntax_errors[-1]
    assert line is None
    assert "nterminated" in message


def test_loads_tolerant_gives_up_on_unclosed_array() -> None:
    parsed = loads_tolerant("a = [1,\n2,\n\n")
    assert parsed.data == {}
    assert parsed.syntax_errors
    assert all(isinstance(message, str) and message for _, message in parsed.syntax_errors)


def test_loads_tolerant_bounds_the_number_of_errors() -> None:
    text = "x = \n" * 200 + "ok = 1\n"
    parsed = loads_tolerant(text)
    assert 1 < len(parsed.syntax_errors) <= 51
    assert parsed.syntax_errors[-1][0] is None
    assert parsed.data == {}


# -- property: every key of a serialised document is located ------------------------------

KEY_ALPHABET = string.ascii_letters + string.digits + "_- .#=[]'é{}"
STRING_ALPHABET = string.ascii_letters + " \n\t\"\\'#[]={},.é\x01\x7f"
BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _key(name: str) -> str:
    return name if BARE_KEY.fullmatch(name) else f'"{name}"'


def _escape(text: str, *, keep_newlines: bool) -> str:
    out = []
    for char in text:
        if char == "\\":
            out.append("\\\\")
        elif char == '"':
            out.append('\\"')
        elif char == "\n" and keep_newlines:
            out.append("\n")
        elif char != "\t" and (ord(char) < 0x20 or ord(char) == 0x7F):
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return "".join(out)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    assert isinstance(value, str)
    if "\n" in value:
        return '"""\n' + _escape(value, keep_newlines=True) + '"""'
    return '"' + _escape(value, keep_newlines=False) + '"'


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _emit(table: dict[str, Any], prefix: tuple[str, ...], out: list[str]) -> None:
    for name, value in table.items():
        if isinstance(value, dict) or _is_table_array(value):
            continue
        if isinstance(value, list):
            out.append(f"{_key(name)} = [")
            out.extend(f"  {_scalar(item)}," for item in value)
            out.append("]")
        else:
            out.append(f"{_key(name)} = {_scalar(value)}")
    for name, value in table.items():
        path = (*prefix, name)
        header = ".".join(_key(part) for part in path)
        if isinstance(value, dict):
            out.append(f"[{header}]")
            _emit(value, path, out)
        elif _is_table_array(value):
            for item in value:
                out.append(f"[[{header}]]")
                _emit(item, path, out)


def dump_toml(data: dict[str, Any]) -> str:
    out: list[str] = []
    _emit(data, (), out)
    return "\n".join(out) + "\n"


def _paths(table: dict[str, Any], prefix: KeyPath = ()) -> Iterator[KeyPath]:
    for name, value in table.items():
        path = (*prefix, name)
        yield path
        if isinstance(value, dict):
            yield from _paths(value, path)
        elif _is_table_array(value):
            for index, item in enumerate(value):
                yield (*path, index)
                yield from _paths(item, (*path, index))
        elif isinstance(value, list):
            for index in range(len(value)):
                yield (*path, index)


_keys = st.text(alphabet=KEY_ALPHABET, min_size=1, max_size=6)
_scalars = st.one_of(
    st.integers(),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet=STRING_ALPHABET, max_size=12),
)
_values = st.recursive(
    st.one_of(_scalars, st.lists(_scalars, max_size=3)),
    lambda inner: st.one_of(
        st.dictionaries(_keys, inner, max_size=4),
        st.lists(st.dictionaries(_keys, inner, max_size=3), min_size=1, max_size=3),
    ),
    max_leaves=15,
)
_documents = st.dictionaries(_keys, _values, max_size=5)


def test_serializer_sanity() -> None:
    data = {"a b": {"x": [{"y": 1}, {"z": "two\nlines"}]}, "n": [1.5, True]}
    text = dump_toml(data)
    assert tomllib.loads(text) == data
    assert '[["a b".x]]' in text


@pytest.mark.slow
@settings(derandomize=True, max_examples=200, deadline=None)
@given(_documents)
def test_every_key_of_a_document_is_located(data: dict[str, Any]) -> None:
    text = dump_toml(data)
    parsed = tomllib.loads(text)
    assert parsed == data, text  # the serializer writes valid TOML
    lines = key_lines(text)
    for path in _paths(data):
        assert path in lines, (path, text)
        line = _line(text, lines[path])
        name = path[-1]
        if isinstance(name, str):
            assert name in line, (path, line, text)
        else:
            parent = path[:-1]
            assert lines[path] >= lines[parent]
            if _is_table_array(_walk(data, parent)):
                assert line.startswith("[[")
                assert str(parent[-1]) in line


def _walk(data: Any, path: KeyPath) -> Any:
    for part in path:
        data = data[part]
    return data


def test_a_date_that_does_not_exist_is_named_as_such() -> None:
    """tomllib calls 2026-13-01 bad syntax; the user is told which figure is wrong."""
    text = "a = 2026-13-01\nb = 2026-02-30T10:00:00 # Monday\nc = 2026-02-03\nd = 2026-1-3\n"
    parsed = loads_tolerant(text)
    assert parsed.syntax_errors[:2] == [
        (1, "a: invalid date 2026-13-01: month must be in 1..12"),
        (2, "b: invalid date 2026-02-30T10:00:00: day is out of range for month"),
    ]
    assert parsed.syntax_errors[2][0] == 4
    assert parsed.syntax_errors[2][1].startswith("TOML syntax error: ")
    assert parsed.data["c"].isoformat() == "2026-02-03"
