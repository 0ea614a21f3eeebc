"""`formal_notice` through the engine, on both engines: the owner's task and its PDF letter."""

from __future__ import annotations

import subprocess
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from followupd.channels.letters.files import file_bytes
from followupd.config.load import parse_settings
from followupd.config.rule_options import FormalNoticeOptions
from followupd.config.settings import Settings
from followupd.domain.states import MissionStatus
from followupd.errors import ConfigError
from followupd.rules.formal_notice import FormalNoticeRule
from followupd.rules.registry import RULES
from followupd.store.attachments import attachments
from followupd.store.db import Store
from followupd.store.updates import mark_invoice_paid
from tests.conftest import RunCli
from tests.rulekit import (
    BOB,
    CLAIRE,
    JDUPONT,
    RuleAlone,
    change_mission,
    imported,
    loaded_with,
    outbox,
    owner_settings,
    paris,
)
from tests.test_template_failures import checked

ADDRESS = 'address = """\n12 rue des Lilas\n69003 Lyon"""\n'
DATA = f"""\
[[clients]]
key = "acme"
name = "ACME SA"
address = "Service comptabilité\\n4 avenue Foch\\n75016 Paris"

[[clients]]
key = "globex"
name = "Globex Inc."
language = "en"
timezone = "America/New_York"
country = "US"

[[clients]]
key = "dupuis"
name = "Marc Dupuis"
kind = "consumer"
address = "3 impasse des Roses\\n33000 Bordeaux"

{JDUPONT}
[[missions]]
key = "acme-audit"
client = "acme"
title = "Audit du SI"
contact = "jdupont"
start = 2026-06-01

[[missions]]
key = "acme-formation"
client = "acme"
title = "Formation"
start = 2026-06-01
late_payment_rate = 15

[[missions]]
key = "globex-api"
client = "globex"
title = "API review"
start = 2026-06-01
status = "disputed"

[[missions]]
key = "dupuis-cuisine"
client = "dupuis"
title = "Plans de la cuisine"
start = 2026-06-01

[[invoices]]
number = "F-2026-040"
mission = "acme-formation"
amount = 5000
issued = 2026-09-15
due = 2026-10-15             # + 45: Sunday 29 November, so Monday 30 November

[[invoices]]
number = "F-2026-041"
mission = "acme-audit"
amount = 900
issued = 2026-09-20
due = 2026-10-20
paid = 2026-10-25

[[invoices]]
number = "F-2026-042"
mission = "acme-audit"
amount = 8000
issued = 2026-10-02
due = 2026-11-02             # + 45: Thursday 17 December
payments = [{{ on = 2026-11-20, amount = 2000 }}]

[[invoices]]
number = "F-2026-043"
mission = "acme-audit"
amount = 1200
issued = 2026-10-20
due = 2026-11-20             # only 27 days late on 17 December: not in that letter

[[invoices]]
number = "G-7"
mission = "globex-api"
amount = 3000
issued = 2026-09-15
due = 2026-10-15

[[invoices]]
number = "D-1"
mission = "dupuis-cuisine"
amount = 1500
issued = 2026-10-02
due = 2026-11-02
"""
TRIGGER = "formal_notice:F-2026-042"
FIRST = "formal_notice:F-2026-040"
CONSUMER = "formal_notice:D-1"

RULE = RuleAlone(FormalNoticeRule, paris(2026, 11, 1), paris(2026, 12, 31))
loaded = loaded_with(DATA)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The owner, with a postal address."""
    return owner_settings(tmp_path, ADDRESS)


def pdf_text(data: bytes, tmp_path: Path) -> str:
    """The text of a PDF, as poppler's pdftotext reads it (layout kept, lines joined)."""
    path = tmp_path / "letter.pdf"
    path.write_bytes(data)
    done = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True, text=True
    )
    return " ".join(done.stdout.split())


def stored(store: Store, key: str) -> tuple[str | None, bytes | None]:
    """The name and bytes of the file of the follow-up keyed `key`, as they are served."""
    with store.session() as session:
        file = attachments(session, [key]).get(key)
    return (None, None) if file is None else (file.name, file_bytes(file))


def test_the_rule_is_registered_under_its_config_name() -> None:
    assert RULES["formal_notice"] is FormalNoticeRule


def test_one_owner_task_45_days_past_due(loaded: Store, settings: Settings) -> None:
    intents = RULE.planned(loaded, settings)
    assert set(intents) == {FIRST, TRIGGER, CONSUMER}, "not paid, not disputed, not too recent"
    task = intents[TRIGGER]
    assert (task.audience, task.channel, task.recipient) == ("owner", "calendar", None)
    assert (task.rule, task.step, task.subject_key) == ("formal_notice", "send", "F-2026-042")
    assert task.due_at == paris(2026, 12, 17, 9, 0)
    assert intents[FIRST].due_at == paris(2026, 11, 30, 9, 0), "a Sunday moves to Monday"
    assert task.subject == "Mise en demeure à envoyer : ACME SA, F-2026-042 (11\u202f311,31\xa0€)"


def test_the_letter_cites_the_clients_invoices_past_the_step(
    loaded: Store, settings: Settings
) -> None:
    letter = RULE.planned(loaded, settings)[TRIGGER].letter
    assert letter is not None
    assert (letter.language, letter.dated, letter.deadline) == (
        "fr",
        date(2026, 12, 17),
        date(2026, 12, 25),
    )
    assert [invoice.number for invoice in letter.invoices] == ["F-2026-040", "F-2026-042"]
    first, trigger = letter.invoices
    # 63 days late at the contract's 15 %: 5000 × 15 % × 63 / 365
    assert (first.unpaid, first.days_late, first.penalties) == (
        Decimal(5000),
        63,
        Decimal("129.45"),
    )
    # 8000 from 3 to 20 November (18 days), 6000 from 21 November to 17 December (27 days),
    # at 2026-H2's ECB rate (2026-H1's 2.15 % stands in) + 10 = 12.15 %
    assert (trigger.unpaid, trigger.days_late) == (Decimal(6000), 45)
    assert trigger.penalties == Decimal("101.86")
    assert first.indemnity == trigger.indemnity == Decimal(40)
    assert letter.totals.total == Decimal("11311.31")
    assert not letter.consumer
    assert letter.creditor.address == "12 rue des Lilas\n69003 Lyon"
    assert letter.creditor.phone == "+33 6 00 00 00 00"
    assert (letter.debtor.name, letter.debtor.contact) == ("ACME SA", "Jeanne Dupont")
    assert letter.debtor.address == "Service comptabilité\n4 avenue Foch\n75016 Paris"
    assert not letter.reminded, "no nudge was sent in this store"


def test_a_consumer_letter_has_no_penalties(loaded: Store, settings: Settings) -> None:
    letter = RULE.planned(loaded, settings)[CONSUMER].letter
    assert letter is not None and letter.consumer
    assert letter.debtor.contact is None
    assert letter.totals.penalties == letter.totals.indemnity == 0
    assert letter.totals.total == Decimal(1500)


def test_without_late_payment_no_penalties(loaded: Store, tmp_path: Path) -> None:
    settings = owner_settings(tmp_path, "[late_payment]\nenabled = false\n")
    letter = RULE.planned(loaded, settings)[TRIGGER].letter
    assert letter is not None and not letter.consumer
    assert letter.totals.penalties == letter.totals.indemnity == 0


def test_the_deadline_days_are_8_to_15(loaded: Store, settings: Settings, tmp_path: Path) -> None:
    options = FormalNoticeOptions(deadline_days=15)
    letter = RULE.planned(loaded, settings, options=options)[TRIGGER].letter
    assert letter is not None and letter.deadline == date(2027, 1, 1)
    with pytest.raises(ConfigError, match="deadline_days"):
        owner_settings(tmp_path, "[rules.formal_notice]\ndeadline_days = 5\n")
    with pytest.raises(ConfigError, match=r"cite_after_days \(50\) is after after_days \(45\)"):
        owner_settings(tmp_path, "[rules.formal_notice]\ncite_after_days = 50\n")


def test_the_task_says_what_to_do_with_the_letter(loaded: Store, settings: Settings) -> None:
    text = RULE.texts(loaded, settings)[TRIGGER]
    assert "en pièce jointe (mise-en-demeure-F-2026-042.pdf)" in text
    assert "elle cite aussi l'autre facture impayée d'ACME SA" in text
    assert "dont 231,31\xa0€ de pénalités de retard et 80,00\xa0€ d'indemnité forfaitaire" in text
    assert "Délai de paiement donné : 8 jours à compter de la réception de la lettre." in text
    assert "y joindre une copie de chaque facture citée" in text
    assert "lettre recommandée avec accusé de réception (LRAR)" in text
    assert "followupd ne l'envoie pas au client" in text
    assert "followupd invoice letter F-2026-042" in text


def test_an_english_contact_gets_a_final_demand(loaded: Store, settings: Settings) -> None:
    change_mission(loaded, "globex-api", status=MissionStatus.ACTIVE)
    intents = RULE.planned(loaded, settings)
    letter = intents["formal_notice:G-7"].letter
    assert letter is not None and letter.language == "en", "Globex writes in English"
    assert letter.debtor.address is None
    assert intents["formal_notice:G-7"].language == "fr", "the task is the owner's, in French"


def test_no_formal_notice_while_disputed_or_paused(loaded: Store, settings: Settings) -> None:
    change_mission(loaded, "acme-audit", paused_until=date(2027, 1, 11))
    intents = RULE.planned(loaded, settings, end=paris(2027, 1, 31))
    assert intents[TRIGGER].due_at == paris(2027, 1, 11, 9, 0), "when the pause ends"
    assert "formal_notice:G-7" not in intents, "a dispute is for talking"


def test_one_letter_cites_the_late_invoices_and_they_get_none_of_their_own(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    """F-2026-042 due on 20 October: 41 days late on F-2026-040's letter of 30 November."""
    data = DATA.replace("due = 2026-11-02             # + 45", "due = 2026-10-20  # + 45")
    loaded = imported(store, tmp_path, data)
    plan = RULE.planned(loaded, settings)
    assert set(plan) == {FIRST, CONSUMER}, "F-2026-042 is in FIRST's letter: no task of its own"
    letter = plan[FIRST].letter
    assert letter is not None
    assert [invoice.number for invoice in letter.invoices] == ["F-2026-040", "F-2026-042"]
    assert RULE.run(loaded, settings, paris(2026, 11, 30, 9, 5))[0] == [FIRST]
    assert TRIGGER not in RULE.planned(loaded, settings, paris(2026, 12, 1)), "recorded: cited"
    # F-2026-040 paid before the letter left: it is called off, and F-2026-042 gets its own
    with loaded.session() as session:
        mark_invoice_paid(session, "F-2026-040", date(2026, 12, 1))
    _, cancelled = RULE.run(loaded, settings, paris(2026, 12, 1, 9, 5))
    assert set(cancelled) == {FIRST}
    again = RULE.planned(loaded, settings, paris(2026, 12, 1))
    assert again[TRIGGER].due_at == paris(2026, 12, 4, 9, 0)


def test_a_pass_records_it_once_with_its_pdf(
    loaded: Store, settings: Settings, tmp_path: Path
) -> None:
    first, _ = RULE.run(loaded, settings, paris(2026, 11, 30, 9, 5))
    assert first == [FIRST]
    recorded, _ = RULE.run(loaded, settings, paris(2026, 12, 17, 9, 5))
    assert set(recorded) == {TRIGGER, CONSUMER}
    assert RULE.run(loaded, settings, paris(2026, 12, 17, 10, 0)) == ([], {})
    row = outbox(loaded)[TRIGGER]
    assert row.state == "pending"
    name, data = stored(loaded, TRIGGER)
    assert name == "mise-en-demeure-F-2026-042.pdf"
    assert data is not None and data.startswith(b"%PDF")
    text = pdf_text(data, tmp_path)
    assert "Mise en demeure de payer" in text
    assert "F-2026-040" in text and "F-2026-042" in text and "F-2026-043" not in text
    assert "Lettre recommandée avec accusé de réception" in text
    assert "12 rue des Lilas" in text and "4 avenue Foch" in text
    assert "Pénalités" in text and "231,31 €" in text, "the penalties of a business"
    assert "dans un délai de 8 jours à compter de la réception de la présente." in text
    consumer = pdf_text(stored(loaded, CONSUMER)[1] or b"", tmp_path)
    assert "Mise en demeure" in consumer and "D-1" in consumer
    assert "Pénalités" not in consumer and "indemnité" not in consumer.lower()


def test_a_letter_that_cannot_be_made_fails_its_follow_up_alone(
    loaded: Store, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(letter: object) -> bytes:
        raise ValueError("no room on the page")

    monkeypatch.setattr("followupd.engine.evaluation.letter_text", broken)
    report = RULE.pass_at(loaded, settings, paris(2026, 12, 17, 9, 5))
    assert set(report.failed) == {FIRST, TRIGGER, CONSUMER}
    assert (
        "the letter could not be made: ValueError('no room on the page')"
        in (report.failed[TRIGGER])
    )
    assert stored(loaded, TRIGGER) == (None, None)


def test_paying_or_a_dispute_cancels_the_pending_task(loaded: Store, settings: Settings) -> None:
    RULE.run(loaded, settings, paris(2026, 11, 30, 9, 5))
    RULE.run(loaded, settings, paris(2026, 12, 17, 9, 5))
    with loaded.session() as session:
        mark_invoice_paid(session, "F-2026-042", date(2026, 12, 18))
    change_mission(loaded, "dupuis-cuisine", status=MissionStatus.DISPUTED)
    _, cancelled = RULE.run(loaded, settings, paris(2026, 12, 18, 9, 0))
    assert cancelled == {
        TRIGGER: "invoice F-2026-042 paid on 2026-12-18",
        CONSUMER: "mission dupuis-cuisine disputed: a dispute is for talking, not a formal notice",
    }


def test_each_owner_writes_about_their_own_missions(store: Store, tmp_path: Path) -> None:
    config = CLAIRE + ADDRESS + BOB + 'address = "1 quai Est\\n69002 Lyon"\n'
    settings = parse_settings(config, tmp_path / "followupd.toml", {"HOME": str(tmp_path)})
    data = DATA.replace('title = "Formation"', 'title = "Formation"\nowner = "bob"')
    imported(store, tmp_path, data, ["claire", "bob"])
    RULE.pass_at(store, settings, paris(2026, 12, 17, 9, 5))
    rows = outbox(store)
    assert rows[FIRST].owner == "bob"
    assert rows[TRIGGER].owner == "claire"
    intents = RULE.planned(store, settings)
    claire = intents[TRIGGER].letter
    assert claire is not None
    assert [invoice.number for invoice in claire.invoices] == ["F-2026-042"], "not Bob's invoice"
    bob = intents[FIRST].letter
    assert bob is not None
    assert (bob.creditor.name, bob.creditor.address) == ("Bob Durand", "1 quai Est\n69002 Lyon")


def test_check_offline_renders_a_user_formal_notice_template(
    cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo has an invoice long overdue, so `check` renders the user's template of the
    formal notice task with sample data, in both languages."""
    for language in ("fr", "en"):
        mine = tmp_path / "mine" / language / "formal_notice" / "send.j2"
        mine.parent.mkdir(parents=True)
        mine.write_text("{% block subject %}{{ letter.deadlin }}{% endblock %}", "utf-8")
    result = checked(cli, tmp_path, monkeypatch)
    assert result.code == 78, result
    shown = " ".join(result.out.split())
    for language in ("fr", "en"):
        assert f"has no attribute 'deadlin' (rendering formal_notice send in {language})" in shown


def test_a_later_letter_does_not_stand_for_an_earlier_one(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    """F-2026-044 (due 1 November, its task on Wednesday 16 December) comes in the data after
    F-2026-042's letter of 17 December was recorded: that letter did not cite it, so its own
    task, still within its grace, is recorded."""
    loaded = imported(store, tmp_path, DATA)
    recorded, _ = RULE.run(loaded, settings, paris(2026, 12, 17, 9, 5))
    assert TRIGGER in recorded
    extra = (
        '[[invoices]]\nnumber = "F-2026-044"\nmission = "acme-audit"\namount = 400\n'
        "issued = 2026-10-01\ndue = 2026-11-01\n"
    )
    imported(loaded, tmp_path, DATA + extra)
    recorded, cancelled = RULE.run(loaded, settings, paris(2026, 12, 17, 10, 0))
    assert recorded == ["formal_notice:F-2026-044"], "F-2026-042's letter did not cite it"
    assert cancelled == {}
    task = RULE.planned(loaded, settings)["formal_notice:F-2026-044"]
    assert task.due_at == paris(2026, 12, 16, 9, 0)
    assert task.letter is not None
    cited = [invoice.number for invoice in task.letter.invoices]
    assert cited == ["F-2026-040", "F-2026-044", "F-2026-042"]
