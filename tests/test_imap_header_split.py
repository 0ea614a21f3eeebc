"""A header in the everyday form is split into fields as the email package splits it."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from followupd.sources.imap.headers import HEADER_FIELDS, _everyday_items, _parsed_items
from tests.imapfetch import crlf, header_fields
from tests.test_fuzz import FUZZ

CORPUS = sorted((Path(__file__).parent / "mail_corpus").glob("*.eml"))


@pytest.mark.parametrize("path", CORPUS, ids=[path.name for path in CORPUS])
def test_real_headers_are_everyday_and_split_alike(path: Path) -> None:
    header = header_fields(crlf(path.read_bytes()), HEADER_FIELDS)
    quick = _everyday_items(header)
    assert quick is not None and len(quick) > 0
    assert quick == _parsed_items(header)


# what makes a header line unusual: line ends of every kind, folding, colons, 8-bit bytes
PIECES = [b"Subject", b"From", b"From ", b"To", b"X-A", b":", b": ", b" ", b"\t", b"\r\n",
          b"\r", b"\n", b"\r\n ", b"\r\n\t", b"\r\n\r\n", b"a@b.example", b"=?utf-8?q?x?=",
          b"\xc3\xa9", b"\xe9", b"\x00", b",", b"<", b">"]  # fmt: skip


@st.composite
def headers(draw: st.DrawFn) -> bytes:
    return b"".join(draw(st.lists(st.sampled_from(PIECES), max_size=40)))


NAMES = st.sampled_from([b"Subject", b"from", b"X-A", b"!~;", b"Message-ID"])
VALUES = st.lists(st.sampled_from([p for p in PIECES if b"\r" not in p and b"\n" not in p]))


@st.composite
def everyday_headers(draw: st.DrawFn) -> bytes:
    """Fields, some folded, each value of any bytes but CR and LF, a blank line, a body."""
    lines = []
    for _ in range(draw(st.integers(1, 8))):
        value = b"".join(draw(VALUES))
        lines.append(draw(NAMES) + b":" + value)
        for _ in range(draw(st.integers(0, 2))):
            lines.append(draw(st.sampled_from([b" ", b"\t"])) + b"".join(draw(VALUES)))
    ending = draw(st.sampled_from([b"\r\n\r\nbody\r\n", b"\r\n\r\n", b"\r\n", b""]))
    return b"\r\n".join(lines) + ending


@settings(FUZZ)
@given(header=everyday_headers())
def test_an_everyday_header_is_split_quickly_as_the_email_package_splits_it(
    header: bytes,
) -> None:
    quick = _everyday_items(header)
    assert quick is not None
    assert quick == _parsed_items(header)


@settings(FUZZ)
@example(header=b"")
@example(header=b"A: b")
@example(header=b"A: b\r\n")
@example(header=b"A:\r\n b\r\n \r\nC: d\r\n\r\nbody")
@example(header=b" A: b\r\n\r\n")
@example(header=b"A : b\r\n\r\n")
@example(header=b"From x: y\r\n\r\n")
@example(header=b"A: b\r\r\n\r\n")
@given(header=headers())
def test_a_header_split_quickly_is_split_as_the_email_package_splits_it(header: bytes) -> None:
    quick = _everyday_items(header)
    if quick is not None:
        assert quick == _parsed_items(header)
