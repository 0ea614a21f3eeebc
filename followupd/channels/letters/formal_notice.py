"""The formal notice to pay as a PDF, for the owner to print and send by registered mail.

An A4 business letter drawn with ReportLab: the sender top left, the addressee on
the right (where a window envelope shows it), place and date, the registered-mail
mention, the object line, the body around a table of the invoices, the closing
formula and the signature.

The same notice always gives the same bytes: ReportLab's `invariant` mode leaves
the creation time and random document id out.

The font is Bitstream Vera, which ships inside ReportLab itself (no system font
needed) and has the French accents, « », œ and the euro sign; it lacks the narrow
no-break space babel puts in French amounts ("12 345,60 €"), written as a no-break
space instead. Characters Vera lacks otherwise (say, a name in Chinese) show as
blanks.

Every string from the user (names, addresses, numbers) is escaped before it reaches
ReportLab's Paragraph, which parses XML-like markup.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files
from io import BytesIO
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_JUSTIFY, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from followupd.channels.letters.notice import FormalNotice
from followupd.channels.letters.wording import LetterText, letter_text

FONT = "FollowupdVera"
BOLD = "FollowupdVera-Bold"
MARGIN = 20 * mm
FRAME_PADDING = 6  # what SimpleDocTemplate's frame leaves inside its margins, in points
WIDTH = A4[0] - 2 * MARGIN - 2 * FRAME_PADDING
RIGHT = WIDTH * 0.52  # where the addressee's block, the date and the signature start
GRID = colors.HexColor("#b0b0b0")
SHADE = colors.HexColor("#eeeeee")
# the invoice table's columns: number, issued, due, amount, unpaid, days late, penalties,
# indemnity
COLUMN_SHARES = (0.117, 0.1265, 0.1265, 0.1385, 0.1385, 0.076, 0.1385, 0.1385)


@lru_cache(maxsize=1)
def _fonts() -> None:
    """Register Vera and Vera Bold, from ReportLab's own fonts directory, once."""
    directory = files("reportlab") / "fonts"
    pdfmetrics.registerFont(TTFont(FONT, str(directory / "Vera.ttf")))
    pdfmetrics.registerFont(TTFont(BOLD, str(directory / "VeraBd.ttf")))
    pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=BOLD, italic=FONT, boldItalic=BOLD)


def _style(name: str, parent: ParagraphStyle | None = None, **overrides: object) -> ParagraphStyle:
    """A style: `parent`'s, or else the body text's, with `overrides`."""
    if parent is not None:
        return ParagraphStyle(name, parent=parent, **overrides)
    base: dict[str, object] = {"fontName": FONT, "fontSize": 9.5, "leading": 13}
    return ParagraphStyle(name, **{**base, **overrides})


def _markup(text: str) -> str:
    """`text` safe for a Paragraph: escaped, with the spaces Vera has."""
    return escape(text.replace("\u202f", "\u00a0"))


def _block(lines: tuple[str, ...], style: ParagraphStyle, bold: ParagraphStyle) -> list[Flowable]:
    """An address block: the name in bold, then one paragraph with the other lines."""
    flowables: list[Flowable] = [Paragraph(_markup(lines[0]), bold)]
    if lines[1:]:
        flowables.append(Paragraph("<br/>".join(_markup(line) for line in lines[1:]), style))
    return flowables


def _invoice_table(text: LetterText) -> Table:
    columns = len(text.header)
    cell = _style("cell", fontSize=8, leading=10)
    figure = _style("figure", parent=cell, alignment=TA_RIGHT)
    head = _style("head", parent=cell, fontName=BOLD)
    head_figure = _style("head-figure", parent=head, alignment=TA_RIGHT)
    total = _style("total", parent=figure, fontName=BOLD)

    def row(values: tuple[str, ...], text_style: ParagraphStyle, figures: ParagraphStyle) -> list[Paragraph]:  # fmt: skip
        # the number and the two dates read left to right; amounts and days line up right
        return [
            Paragraph(_markup(value), text_style if index < 3 else figures)
            for index, value in enumerate(values)
        ]

    data: list[list[Paragraph | str]] = [
        [*row(text.header, head, head_figure)],
        *([*row(values, cell, figure)] for values in text.rows),
        [*row(text.total_row, head, total)],
    ]
    commands: list[tuple[object, ...]] = [
        ("BACKGROUND", (0, 0), (-1, 0), SHADE),
        ("LINEBELOW", (0, 0), (-1, 0), 0.6, GRID),
        ("LINEBELOW", (0, 1), (-1, -1), 0.3, GRID),
        ("LINEABOVE", (0, len(data) - 1), (-1, len(data) - 1), 0.9, colors.black),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("TOPPADDING", (0, 0), (-1, -1), 3),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
    ]
    if text.due_row is not None:
        label, amount = text.due_row
        last = len(data)
        data.append(
            [Paragraph(_markup(label), total), *[""] * (columns - 3), Paragraph(_markup(amount), total), ""]  # fmt: skip
        )
        commands += [  # the label right of the first columns, the amount under the last two
            ("SPAN", (0, last), (columns - 3, last)),
            ("SPAN", (columns - 2, last), (columns - 1, last)),
            ("BACKGROUND", (0, last), (-1, last), SHADE),
        ]
    # at 8 points, "Sep 30, 2026" and "114 745,60 €" in bold fit on one line; without the
    # penalty columns (a consumer), the others share their room
    shares = COLUMN_SHARES[:columns]
    table = Table(
        data, colWidths=[WIDTH * share / sum(shares) for share in shares], repeatRows=1
    )
    table.setStyle(TableStyle(commands))
    return table


def formal_notice_pdf(notice: FormalNotice) -> bytes:
    """The letter of `notice` as a one-page (or more, with many invoices) A4 PDF."""
    _fonts()
    text = letter_text(notice)
    body = _style("body", alignment=TA_JUSTIFY, spaceAfter=8)
    plain = _style("plain")
    bold = _style("bold", fontName=BOLD)
    right = _style("right", leftIndent=RIGHT)
    right_bold = _style("right-bold", parent=right, fontName=BOLD)

    addresses = Table(
        [
            [_block(text.creditor, plain, bold), ""],
            ["", _block(text.debtor, plain, bold)],
        ],
        colWidths=[RIGHT, WIDTH - RIGHT],
        style=TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 0),
                ("TOPPADDING", (0, 0), (-1, -1), 0),
                ("BOTTOMPADDING", (0, 0), (-1, 0), 8 * mm),
            ]
        ),
    )
    story: list[Flowable] = [
        addresses,
        Spacer(0, 8 * mm),
        Paragraph(_markup(text.place_date), right),
        Spacer(0, 7 * mm),
        Paragraph(_markup(text.registered), bold),
        Spacer(0, 2 * mm),
        Paragraph(_markup(text.subject), bold),
        Spacer(0, 5 * mm),
        Paragraph(_markup(text.salutation), body),
        *(Paragraph(_markup(paragraph), body) for paragraph in text.before_table),
        _invoice_table(text),
        Spacer(0, 4 * mm),
        *(Paragraph(_markup(paragraph), body) for paragraph in text.after_table),
        Paragraph(_markup(text.closing), body),
        Spacer(0, 4 * mm),
        Spacer(0, 4 * mm),
        Paragraph(_markup(text.signature), right_bold),  # room above for the signature
    ]
    output = BytesIO()
    document = SimpleDocTemplate(
        output,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
        title=text.title,
        author=notice.creditor.name,
        creator="followupd",
        lang=notice.language,
        invariant=1,
    )
    document.build(story)
    return output.getvalue()
