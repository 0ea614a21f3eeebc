"""`followupd.sources.files.json_positions`: the line of every member and element of JSON."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from followupd.config.toml_positions import KeyPath
from followupd.sources.files.json_positions import json_positions

TEXT = """\
{"clients": [
  {"key": "acme", "name": "ACME"},
  {"key": "b",
   "name": "B \\"quoted\\" {not an object}"}
 ],
 "invoices": [], "missions": [{}, [1.5e3, -2, true, null]]}
"""


def test_every_member_and_element_is_at_its_line() -> None:
    expected: dict[KeyPath, int] = {
        ("clients",): 1,
        ("clients", 0): 2,
        ("clients", 0, "key"): 2,
        ("clients", 0, "name"): 2,
        ("clients", 1): 3,
        ("clients", 1, "key"): 3,
        ("clients", 1, "name"): 4,
        ("invoices",): 6,
        ("missions",): 6,
        ("missions", 0): 6,
        ("missions", 1): 6,
        **{("missions", 1, index): 6 for index in range(4)},
    }
    assert json_positions(TEXT).lines == expected
    assert json_positions(TEXT).again == []


def _paths(value: Any, path: KeyPath = ()) -> dict[KeyPath, Any]:
    found: dict[KeyPath, Any] = {}
    if isinstance(value, dict):
        items: Any = value.items()
    else:
        items = enumerate(value) if isinstance(value, list) else ()
    for key, each in items:
        found[(*path, key)] = each
        found |= _paths(each, (*path, key))
    return found


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(_JSON)
def test_one_line_per_value_when_indented(data: Any) -> None:
    """`json.dumps(indent=0)` puts each member and element on a line of its own."""
    text = json.dumps({"root": data}, indent=0)
    lines = json_positions(text).lines
    paths = _paths({"root": data})
    assert set(lines) == set(paths)
    for path, line in lines.items():
        shown = text.splitlines()[line - 1]
        if isinstance(path[-1], str):
            assert shown.startswith(json.dumps(path[-1]) + ":"), (path, shown)
        elif not isinstance(paths[path], dict | list) or not paths[path]:
            assert shown.rstrip(",") == json.dumps(paths[path]), (path, shown)


def test_a_key_given_twice_in_an_object_is_told_with_its_line() -> None:
    text = '{"clients": [{"key": "a",\n "name": "A",\n "name": "B"}],\n "name": 1}'
    assert json_positions(text).again == [(("clients", 0, "name"), 3)]
