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

from collections.abc import Callable
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
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    Flowable,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from followupd.channels.letters.wording import LetterText, letter_text
from followupd.domain.formal_notice import FormalNotice

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
TABLE_SIZE = 8.0  # the table's font size, in points, when every figure fits its column
SMALLEST_SIZE = 6.0  # as small as it gets for wide figures ("1 234 567,89 $US")
CELL_PADDING = 3


@lru_cache(maxsize=1)
def _fonts() -> None:
    """Register Vera and Vera Bold, from ReportLab's own fonts directory, once."""
    directory = files("reportlab") / "fonts"
    pdfmetrics.registerFont(TTFont(FONT, str(directory / "Vera.ttf")))
    pdfmetrics.registerFont(TTFont(BOLD, str(directory / "VeraBd.ttf")))
    pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=BOLD, italic=FONT, boldItalic=BOLD)


class _Styles:
    """The paragraph styles of the letter: 9.5-point body text, a `table_size`-point table."""

    def __init__(self, table_size: float = TABLE_SIZE) -> None:
        self.plain = ParagraphStyle("plain", fontName=FONT, fontSize=9.5, leading=13)
        self.bold = ParagraphStyle("bold", parent=self.plain, fontName=BOLD)
        self.body = ParagraphStyle("body", parent=self.plain, alignment=TA_JUSTIFY, spaceAfter=8)
        self.right = ParagraphStyle("right", parent=self.plain, leftIndent=RIGHT)
        self.right_bold = ParagraphStyle("right-bold", parent=self.right, fontName=BOLD)
        leading = table_size * 1.25
        self.cell = ParagraphStyle("cell", fontName=FONT, fontSize=table_size, leading=leading)
        self.figure = ParagraphStyle("figure", parent=self.cell, alignment=TA_RIGHT)
        self.head = ParagraphStyle("head", parent=self.cell, fontName=BOLD)
        self.head_figure = ParagraphStyle("head-figure", parent=self.head, alignment=TA_RIGHT)
        self.total = ParagraphStyle("total", parent=self.figure, fontName=BOLD)


def _markup(text: str) -> str:
    """`text` safe for a Paragraph: escaped, with the spaces Vera has."""
    return escape(text.replace("\u202f", "\u00a0"))


def _block(lines: tuple[str, ...], styles: _Styles) -> list[Flowable]:
    """An address block: the name in bold, then one paragraph with the other lines."""
    flowables: list[Flowable] = [Paragraph(_markup(lines[0]), styles.bold)]
    if lines[1:]:
        text = "<br/>".join(_markup(line) for line in lines[1:])
        flowables.append(Paragraph(text, styles.plain))
    return flowables


def _row(
    values: tuple[str, ...], words: ParagraphStyle, figures: ParagraphStyle
) -> list[Flowable | str]:
    """A row of the invoice table: the number and the two dates read left to right,
    amounts and days line up right."""
    return [
        Paragraph(_markup(value), words if column < 3 else figures)
        for column, value in enumerate(values)
    ]


def _table_size(text: LetterText, widths: list[float]) -> float:
    """The table's font size: TABLE_SIZE, less when a figure would not fit its column.

    Figures never wrap: "12 345,60 $US" cut after "$U" would be misread.
    """
    size = TABLE_SIZE
    for values in (*text.rows, text.total_row):
        for column, value in enumerate(values[3:], start=3):
            room = widths[column] - 2 * CELL_PADDING - 1  # a point to spare: no rounding wrap
            needed = pdfmetrics.stringWidth(value.replace("\u202f", "\u00a0"), BOLD, TABLE_SIZE)
            if needed > room:
                size = min(size, TABLE_SIZE * room / needed)
    return max(size, SMALLEST_SIZE)


def _invoice_table(text: LetterText) -> Table:
    columns = len(text.header)
    # without the penalty columns (a consumer), the others share their room
    shares = COLUMN_SHARES[:columns]
    widths = [WIDTH * share / sum(shares) for share in shares]
    styles = _Styles(_table_size(text, widths))
    data = [
        _row(text.header, styles.head, styles.head_figure),
        *(_row(values, styles.cell, styles.figure) for values in text.rows),
        _row(text.total_row, styles.head, styles.total),
    ]
    total = len(data) - 1
    style = TableStyle(
        [
            ("BACKGROUND", (0, 0), (-1, 0), SHADE),
            ("LINEBELOW", (0, 0), (-1, 0), 0.6, GRID),
            ("LINEBELOW", (0, 1), (-1, -1), 0.3, GRID),
            ("LINEABOVE", (0, total), (-1, total), 0.9, colors.black),
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ("TOPPADDING", (0, 0), (-1, -1), 3),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
            ("LEFTPADDING", (0, 0), (-1, -1), CELL_PADDING),
            ("RIGHTPADDING", (0, 0), (-1, -1), CELL_PADDING),
        ]
    )
    if text.due_row is not None:  # its label right of the first columns, its amount under the
        label, amount = text.due_row  # last two
        due = len(data)
        data.append(
            [
                Paragraph(_markup(label), styles.total),
                *[""] * (columns - 3),
                Paragraph(_markup(amount), styles.total),
                "",
            ]
        )
        style.add("SPAN", (0, due), (columns - 3, due))
        style.add("SPAN", (columns - 2, due), (columns - 1, due))
        style.add("BACKGROUND", (0, due), (-1, due), SHADE)
    return Table(data, colWidths=widths, style=style, repeatRows=1)


def formal_notice_pdf(notice: FormalNotice) -> bytes:
    """The letter of `notice` as a one-page (or more, with many invoices) A4 PDF."""
    _fonts()
    text = letter_text(notice)
    styles = _Styles()
    addresses = Table(
        [
            [_block(text.creditor, styles), ""],
            ["", _block(text.debtor, styles)],
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
        Paragraph(_markup(text.place_date), styles.right),
        Spacer(0, 7 * mm),
        Paragraph(_markup(text.registered), styles.bold),
        Spacer(0, 2 * mm),
        Paragraph(_markup(text.subject), styles.bold),
        Spacer(0, 5 * mm),
        Paragraph(_markup(text.salutation), styles.body),
        Paragraph(_markup(text.before_table), styles.body),
        _invoice_table(text),
        Spacer(0, 4 * mm),
        *(Paragraph(_markup(paragraph), styles.body) for paragraph in text.after_table),
        KeepTogether(  # the signature never alone on a last page
            [
                Paragraph(_markup(text.closing), styles.body),
                Spacer(0, 10 * mm),  # room for the handwritten signature
                Paragraph(_markup(text.signature), styles.right_bold),
                Spacer(0, 6 * mm),
                Paragraph(_markup(text.enclosures), styles.plain),
            ]
        ),
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
    document.build(story, onLaterPages=_footer(text.title))
    return output.getvalue()


def _footer(title: str) -> Callable[[Canvas, BaseDocTemplate], None]:
    """What the second page and the next show at their foot: the letter's title, the page."""

    def draw(canvas: Canvas, document: BaseDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 8)
        canvas.setFillColor(colors.dimgrey)
        canvas.drawCentredString(A4[0] / 2, 9 * mm, f"{title} — {document.page}")
        canvas.restoreState()

    return draw
