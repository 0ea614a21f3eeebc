"""The formal notice to pay: a PDF whose text poppler reads back, in French and English.

The PDF is read with poppler's pdftotext and rendered with pdftoppm (Debian's
poppler-utils, which tests/run installs): what a recipient's viewer would show, not
what ReportLab was asked to draw.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from followupd.channels.letters import (
    Creditor,
    Debtor,
    FormalNotice,
    NoticeInvoice,
    formal_notice_pdf,
)

CREDITOR = Creditor(
    name="Claire Martin Conseil",
    email="claire@martin-conseil.fr",
    phone="06 12 34 56 78",
    address="12 rue des Lilas\n69003 Lyon",
)
DEBTOR = Debtor(
    name="Durand Industries SAS", address="3 avenue Foch\n75016 Paris", contact="Jean Dupont"
)
INVOICES = (
    NoticeInvoice(
        number="F-2026-031",
        issued=date(2026, 9, 1),
        due=date(2026, 10, 1),
        amount=Decimal("12345.60"),
        unpaid=Decimal("12345.60"),
        penalties=Decimal("431.20"),
        indemnity=Decimal(40),
        days_late=64,
        mission="Refonte du CRM",
    ),
    NoticeInvoice(
        number="F-2026-034",
        issued=date(2026, 10, 1),
        due=date(2026, 10, 31),
        amount=Decimal("2400.00"),
        unpaid=Decimal("1200.00"),
        penalties=Decimal("19.85"),
        indemnity=Decimal(40),
        days_late=34,
        mission="Refonte du CRM",
    ),
)
FRENCH = FormalNotice(
    language="fr",
    creditor=CREDITOR,
    debtor=DEBTOR,
    dated=date(2026, 12, 4),
    deadline=date(2026, 12, 12),
    invoices=INVOICES,
    place="Lyon",
)
ENGLISH = replace(FRENCH, language="en")
# a private client: the same invoices, penalties and indemnity passed but never shown
CONSUMER = replace(
    FRENCH,
    consumer=True,
    debtor=Debtor(name="Sophie Leroy", address="8 rue Vauban\n67000 Strasbourg"),
)


def poppler(program: str) -> str:
    found = shutil.which(program)
    assert found is not None, f"{program} is missing: install Debian's package poppler-utils"
    return found


def text_of(pdf: bytes, tmp_path: Path) -> str:
    """The PDF's text as pdftotext reads it, each run of spaces (no-break ones too) one space."""
    path = tmp_path / "notice.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(
        [poppler("pdftotext"), "-layout", "-enc", "UTF-8", str(path), "-"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode("utf-8")
    return plain(text)


def plain(text: str) -> str:
    return re.sub(r"[\s\u00a0\u202f]+", " ", text)


def pages_of(pdf: bytes, tmp_path: Path) -> int:
    path = tmp_path / "pages.pdf"
    path.write_bytes(pdf)
    info = subprocess.run(
        [poppler("pdfinfo"), str(path)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    found = re.search(r"^Pages:\s+(\d+)$", info, re.MULTILINE)
    assert found is not None, info
    return int(found[1])


def test_the_french_letter_to_a_business_cites_invoices_amounts_law_and_deadline(
    tmp_path: Path,
) -> None:
    text = text_of(formal_notice_pdf(FRENCH), tmp_path)

    assert "Lettre recommandée avec accusé de réception" in text
    assert "Objet : Mise en demeure de payer — factures n° F-2026-031 et F-2026-034" in text
    assert "Lyon, le 4 décembre 2026" in text
    assert "À l'attention de Jean Dupont" in text
    assert "Madame, Monsieur," in text
    # the table: each invoice's dates, amounts, days late, penalties and indemnity
    for cells in (
        "F-2026-031 01/09/2026 01/10/2026 12 345,60 € 12 345,60 € 64 431,20 € 40,00 €",
        "F-2026-034 01/10/2026 31/10/2026 2 400,00 € 1 200,00 € 34 19,85 € 40,00 €",
        "Total 14 745,60 € 13 545,60 € 451,05 € 80,00 €",
        "Total dû 14 076,65 €",
    ):
        assert cells in text
    assert "article L441-10 du Code de commerce" in text
    assert (
        "indemnité forfaitaire pour frais de recouvrement de 40 euros "
        "(article D441-5 du Code de commerce)"
    ) in text
    assert (
        "la somme de 14 076,65 € (13 545,60 € en principal, 451,05 € de pénalités de retard "
        "et 80,00 € d'indemnité forfaitaire) dans un délai de 8 jours à compter de la "
        "réception de la présente."
    ) in text
    assert (
        "Les pénalités, calculées au taux appliqué par la Banque centrale européenne à son "
        "opération de refinancement la plus récente, majoré de 10 points de pourcentage, sont "
        "arrêtées à la date de la présente"
    ) in text
    assert "restent impayées à ce jour, au titre de la mission « Refonte du CRM » :" in text
    assert "P.J. : copie des factures" in text
    assert "12 décembre" not in text, "no fixed date: the days run from receipt"
    assert "procédure de recouvrement judiciaire, notamment une injonction de payer" in text
    assert "me joindre au 06 12 34 56 78 ou à claire@martin-conseil.fr" in text
    assert "l'expression de mes salutations distinguées" in text


def test_the_english_letter_says_the_same_facts(tmp_path: Path) -> None:
    text = text_of(formal_notice_pdf(ENGLISH), tmp_path)

    assert "Sent by registered post with acknowledgement of receipt" in text
    assert "Formal final demand for payment — letter before action" in text
    assert "invoices F-2026-031 and F-2026-034" in text
    assert "Lyon, December 4, 2026" in text
    assert "Dear Jean Dupont," in text
    assert "F-2026-031 Sep 1, 2026 Oct 1, 2026 €12,345.60 €12,345.60 64 €431.20 €40.00" in text
    assert "Total due €14,076.65" in text
    assert "article L441-10 of the French Commercial Code" in text
    assert "fixed compensation for recovery costs of 40 euros (article D441-5" in text
    assert "within 8 days of receipt of this letter." in text
    assert "The penalties, calculated at the rate applied by the European Central Bank" in text
    assert "remain unpaid for the assignment \u201cRefonte du CRM\u201d:" in text
    assert "Enclosures: copies of the invoices" in text
    assert "court proceedings" in text
    assert "order for payment" in text
    assert "Yours sincerely," in text
    assert "Mise en demeure" not in text


def test_a_consumer_is_never_shown_penalties_nor_the_indemnity(tmp_path: Path) -> None:
    text = text_of(formal_notice_pdf(CONSUMER), tmp_path)

    assert "Mise en demeure de payer" in text
    assert "F-2026-031 01/09/2026 01/10/2026 12 345,60 € 12 345,60 € 64" in text
    assert "F-2026-034 01/10/2026 31/10/2026 2 400,00 € 1 200,00 € 34" in text
    assert "la somme de 13 545,60 € dans un délai de 8 jours" in text
    assert "dans un délai de 8 jours à compter de la réception de la présente." in text
    assert "injonction de payer" in text
    for claimed in (
        "L441-10",
        "D441-5",
        "pénalité",
        "Pénalité",
        "indemnité",
        "Indemnité",
        "40 euros",
        "40,00 €",
        "431,20",
        "14 076,65",
        "Total dû",
    ):
        assert claimed not in text, claimed
    assert CONSUMER.totals.total == Decimal("13545.60")


def test_the_notice_totals_leave_out_a_consumers_penalties() -> None:
    assert FRENCH.totals.unpaid == Decimal("13545.60")
    assert FRENCH.totals.penalties == Decimal("451.05")
    assert FRENCH.totals.indemnity == Decimal(80)
    assert FRENCH.totals.total == Decimal("14076.65")
    assert CONSUMER.totals.penalties == CONSUMER.totals.indemnity == 0
    assert FRENCH.days_given == 8


def test_invoices_in_dollars_demand_the_indemnity_in_euros_beside_them(tmp_path: Path) -> None:
    """D441-5's indemnity is 40 euros whatever the currency: stated apart, never added."""
    dollars = replace(FRENCH, currency="USD")
    assert dollars.indemnity_apart
    assert dollars.demanded == Decimal("13996.65")  # unpaid and penalties, in dollars
    text = text_of(formal_notice_pdf(dollars), tmp_path)
    for cells in (
        "F-2026-031 01/09/2026 01/10/2026 12 345,60 $US 12 345,60 $US 64 431,20 $US 40,00 €",
        "Total 14 745,60 $US 13 545,60 $US 451,05 $US 80,00 €",
        "Total dû 13 996,65 $US + 80,00 €",
    ):
        assert cells in text
    assert (
        "la somme de 13 996,65 $US + 80,00 € (13 545,60 $US en principal, 451,05 $US de "
        "pénalités de retard et 80,00 € d'indemnité forfaitaire)"
    ) in text
    english = text_of(formal_notice_pdf(replace(dollars, language="en")), tmp_path)
    assert "Total due $13,996.65 + €80.00" in english
    # a figure too wide for its column makes the table's type smaller, never wraps it
    large = replace(INVOICES[0], amount=Decimal("1234567.89"), unpaid=Decimal("1234567.89"))
    text = text_of(formal_notice_pdf(replace(dollars, invoices=(large,))), tmp_path)
    assert "1 234 567,89 $US 1 234 567,89 $US 64 431,20 $US 40,00 €" in text
    assert not FRENCH.indemnity_apart and FRENCH.demanded == FRENCH.totals.total


def test_one_invoice_and_no_earlier_reminder_are_said_in_the_singular(tmp_path: Path) -> None:
    one = replace(FRENCH, invoices=INVOICES[1:], reminded=False, place=None)
    text = text_of(formal_notice_pdf(one), tmp_path)

    assert "Objet : Mise en demeure de payer — facture n° F-2026-034" in text
    assert "Le 4 décembre 2026" in text
    assert (
        "Sauf erreur de ma part, la facture suivante reste impayée à ce jour, au titre de la "
        "mission « Refonte du CRM » :"
    ) in text
    assert "P.J. : copie de la facture" in text
    assert "relances" not in text
    assert "F-2026-031" not in text


def test_user_markup_in_names_and_addresses_is_printed_verbatim(tmp_path: Path) -> None:
    notice = replace(
        FRENCH,
        creditor=replace(CREDITOR, name="Claire <i>Martin</i> & Associés"),
        debtor=Debtor(
            name="Acme <b>& Fils", address="<br/>3 rue <font>\n75001 Paris &amp;", contact="Zoé <u>"
        ),
        invoices=(replace(INVOICES[0], number="F<1>&2"),),
    )
    text = text_of(formal_notice_pdf(notice), tmp_path)

    assert "Acme <b>& Fils" in text
    assert "Claire <i>Martin</i> & Associés" in text
    assert "<br/>3 rue <font>" in text
    assert "75001 Paris &amp;" in text
    assert "À l'attention de Zoé <u>" in text
    assert "facture n° F<1>&2" in text


def test_the_same_notice_gives_the_same_bytes() -> None:
    first = formal_notice_pdf(FRENCH)

    assert first.startswith(b"%PDF-")
    assert formal_notice_pdf(FRENCH) == first
    assert formal_notice_pdf(replace(FRENCH, deadline=date(2026, 12, 13))) != first


def test_two_invoices_fit_one_page_and_many_run_over_with_the_table(tmp_path: Path) -> None:
    assert pages_of(formal_notice_pdf(FRENCH), tmp_path) == 1
    many = tuple(replace(INVOICES[0], number=f"F-2026-{n:03}") for n in range(1, 61))
    pdf = formal_notice_pdf(replace(FRENCH, invoices=many))

    assert pages_of(pdf, tmp_path) > 1
    text = text_of(pdf, tmp_path)
    assert "F-2026-001" in text
    assert "F-2026-060" in text
    assert "Total dû 769 008,00 €" in text  # 60 × (12 345,60 + 431,20 + 40,00)
    assert text.count("Facture Émise le") > 1  # the header repeated on the next page
    assert "Mise en demeure de payer — Durand Industries SAS — 2" in text  # its foot


@pytest.mark.parametrize("notice", [FRENCH, ENGLISH, CONSUMER], ids=["fr", "en", "consumer"])
def test_the_page_renders_as_an_image(notice: FormalNotice, tmp_path: Path) -> None:
    path = tmp_path / "notice.pdf"
    path.write_bytes(formal_notice_pdf(notice))
    subprocess.run(
        [
            poppler("pdftoppm"),
            "-png",
            "-r",
            "50",
            "-singlefile",
            str(path),
            str(tmp_path / "page"),
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )
    png = (tmp_path / "page.png").read_bytes()

    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 10_000  # a page of text, not a blank one (about 2 kB)
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (414, 585)  # A4 (595 × 842 points) at 50 dpi


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"language": "de"}, "language 'de'"),
        ({"invoices": ()}, "at least one invoice"),
        ({"deadline": date(2026, 12, 4)}, "is not after the letter's date"),
    ],
)
def test_a_notice_that_cannot_be_written_is_refused(
    changes: dict[str, object], problem: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        replace(FRENCH, **changes)  # type: ignore[arg-type]


def test_characters_the_font_lacks_leave_a_blank_not_an_error(tmp_path: Path) -> None:
    notice = replace(FRENCH, debtor=Debtor(name="李 Studio 🎉 Ωmega"))
    text = text_of(formal_notice_pdf(notice), tmp_path)

    assert "Studio" in text
    assert "Ωmega" in text  # Greek is in Vera
    assert "Mise en demeure de payer" in text


def test_the_letter_says_how_the_penalties_are_reckoned(tmp_path: Path) -> None:
    """The contract's rate when every invoice has it; both ways when only some have."""
    contract = replace(
        FRENCH, invoices=tuple(replace(found, contract_rate=Decimal("12.5")) for found in INVOICES)
    )
    text = text_of(formal_notice_pdf(contract), tmp_path)
    assert "Les pénalités, calculées au taux de 12,5 % l'an prévu au contrat, sont" in text
    mixed = replace(FRENCH, invoices=(contract.invoices[0], INVOICES[1]), margin_points=Decimal(8))
    text = text_of(formal_notice_pdf(mixed), tmp_path)
    assert (
        "calculées au taux prévu au contrat ou, à défaut, au taux de refinancement de la Banque "
        "centrale européenne majoré de 8 points de pourcentage"
    ) in text
    english = text_of(formal_notice_pdf(replace(contract, language="en")), tmp_path)
    assert "calculated at the contractual rate of 12.5% a year" in english
