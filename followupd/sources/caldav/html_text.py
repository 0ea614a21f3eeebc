"""Calendar descriptions written in HTML, read as the lines of text they show.

RFC 5545 makes DESCRIPTION plain text, but Google Calendar writes the HTML of
its editor there (``key: acme-crm<br>client: acme``, ``<b>``, ``&amp;``,
``<a href>``, ``<ul><li>``, ``&nbsp;``), and Outlook puts an HTML copy in
``X-ALT-DESC;FMTTYPE=text/html``. What such a description shows is text in
lines: block elements and ``<br>`` end a line, entities are decoded, tags are
dropped, and scripts and styles are not text. The standard library's
html.parser reads it: it never fails, whatever the markup. It is imported
(with its table of entities) when a description is HTML, not with this module:
a sync whose descriptions are text, and `plan`, need it not.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from typing import Protocol

# the tags calendar apps write; a plain-text note such as "<compte rendu>" is no HTML
TAGS = (
    "a|abbr|b|big|blockquote|body|br|center|code|dd|del|div|dl|dt|em|font|h[1-6]|head|hr|"
    "html|html-blob|i|img|ins|li|meta|ol|p|pre|s|small|span|strike|strong|style|sub|sup|"
    "table|tbody|td|tfoot|th|thead|title|tr|tt|u|ul"
)
LOOKS_LIKE_HTML = re.compile(
    rf"</?(?:{TAGS})(?:\s[^<>]*)?/?>|&(?:[a-z][a-z0-9]*|#[0-9]+|#x[0-9a-f]+);", re.IGNORECASE
)
# elements that start and end a line of their own
BLOCKS = frozenset((
    "address", "article", "aside", "blockquote", "body", "center", "dd", "div", "dl", "dt",
    "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6",
    "header", "hr", "html", "li", "main", "nav", "ol", "p", "pre", "section", "table", "tbody",
    "td", "tfoot", "th", "thead", "tr", "ul",
))  # fmt: skip
NOT_TEXT = frozenset(("head", "script", "style", "template", "title"))
SPACES = re.compile(r"[^\S\n]+")  # runs of spaces, tabs and no-break spaces within a line


def looks_like_html(text: str) -> bool:
    return LOOKS_LIKE_HTML.search(text) is not None


def html_to_lines(html: str) -> str:
    """The text `html` shows, one line per line, spaces collapsed within each.

    A line break in the source also ends a line: apps that write HTML write
    one wherever the user typed one, and a line too many never merges two
    ``field: value`` lines, while a line too few would.
    """
    parser = _text_parser()()
    parser.feed(html)
    parser.close()
    lines = (SPACES.sub(" ", line).strip() for line in "".join(parser.parts).split("\n"))
    return "\n".join(lines).strip("\n")


class _Parser(Protocol):
    parts: list[str]

    def feed(self, data: str) -> None: ...
    def close(self) -> None: ...


@cache
def _text_parser() -> Callable[[], _Parser]:
    """The class of the parser, made (html.parser imported) on the first HTML read."""
    from html.parser import HTMLParser

    class TextParser(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.parts: list[str] = []
            self.hidden = 0  # depth inside elements that are not text

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag in NOT_TEXT:
                self.hidden += 1
            elif tag == "br" or tag in BLOCKS:
                self.parts.append("\n")

        def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag == "br" or tag in BLOCKS:
                self.parts.append("\n")

        def handle_endtag(self, tag: str) -> None:
            if tag in NOT_TEXT:
                self.hidden = max(0, self.hidden - 1)
            elif tag in BLOCKS:
                self.parts.append("\n")

        def handle_data(self, data: str) -> None:
            if not self.hidden:
                self.parts.append(data)

    return TextParser
