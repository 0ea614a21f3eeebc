"""`limitation_alert` through the engine, on hand-made stores of both engines."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from followupd.config.rule_options import LimitationAlertOptions
from followupd.config.settings import Settings
from followupd.rules.limitation_alert import LimitationAlert
from followupd.rules.registry import RULES
from followupd.store.db import Store
from followupd.store.updates import mark_invoice_paid
from tests.conftest import RunCli
from tests.rulekit import (
    ACME_AND_GLOBEX,
    IN_ENGLISH,
    JDUPONT,
    RuleAlone,
    change_mission,
    imported,
    loaded_with,
    outbox,
    owner_settings,
    paris,
)
from tests.rulekit import settings as settings
from tests.test_template_failures import checked

DATA = f"""\
{ACME_AND_GLOBEX}
[[clients]]
key = "dupuis"
name = "Marc Dupuis"
kind = "consumer"

{JDUPONT}
[[missions]]
key = "acme-audit"
client = "acme"
title = "Audit du SI"
contact = "jdupont"
start = 2021-09-01

[[missions]]
key = "acme-late"
client = "acme"
title = "Invoiced late"
start = 2021-09-01
end = 2021-10-29
status = "closed"

[[missions]]
key = "dupuis-cuisine"
client = "dupuis"
title = "Plans de la cuisine"
start = 2025-01-06
end = 2025-02-27

[[invoices]]
number = "F-2021-050"
mission = "acme-audit"
amount = 12000
issued = 2021-12-08          # a Wednesday: the 5 years end on Tuesday 8 December 2026
due = 2022-01-07
payments = [{{ on = 2022-02-10, amount = 5000 }}]

[[invoices]]
number = "F-2021-051"
mission = "acme-audit"
amount = 3000
issued = 2021-12-08
due = 2022-01-07
paid = 2022-01-20

[[invoices]]
number = "F-2022-003"
mission = "acme-late"
amount = 800
issued = 2022-01-14          # months after the work ended on 29 October 2021
due = 2022-02-13

[[invoices]]
number = "F-2025-011"
mission = "dupuis-cuisine"
amount = 1500
issued = 2025-02-27          # a consumer: 2 years, to Saturday 27 February 2027
due = 2025-03-29
"""
BUSINESS = "limitation_alert:F-2021-050:2026-12-08"
LATE = "limitation_alert:F-2022-003:2026-10-29"
CONSUMER = "limitation_alert:F-2025-011:2027-02-27"

RULE = RuleAlone(LimitationAlert, paris(2026, 1, 1), paris(2027, 12, 31))
loaded = loaded_with(DATA)


def test_the_rule_is_registered_under_its_config_name() -> None:
    assert RULES["limitation_alert"] is LimitationAlert


def test_one_owner_task_six_months_before_each_limit(loaded: Store, settings: Settings) -> None:
    intents = RULE.planned(loaded, settings)
    assert set(intents) == {BUSINESS, LATE, CONSUMER}, "a paid invoice has no alert"
    business = intents[BUSINESS]
    assert (business.audience, business.channel, business.recipient) == ("owner", "calendar", None)
    assert business.step == "alert"
    assert business.subject_key == "F-2021-050"
    assert business.due_at == paris(2026, 6, 8, 9, 0)  # 8 December 2026 less six months
    # it may fire until the last day to act, not a week: never after it
    assert business.expires_at == paris(2026, 12, 9)
    assert business.subject == "Facture F-2021-050 (ACME SA) : prescrite après le 8 décembre 2026"
    assert business.mission_id is not None and business.contact_id is not None
    # the work ended before the late invoice: five years from the end of the mission
    assert intents[LATE].due_at == paris(2026, 4, 29, 9, 0)
    # two years against a consumer; 27 August 2026 is a Thursday
    assert intents[CONSUMER].due_at == paris(2026, 8, 27, 9, 0)
    assert intents[CONSUMER].expires_at == paris(2027, 2, 28)


def test_months_ahead_moves_the_alert(loaded: Store, settings: Settings) -> None:
    options = LimitationAlertOptions(months_ahead=3)
    intents = RULE.planned(loaded, settings, options=options)
    assert intents[BUSINESS].due_at == paris(2026, 9, 8, 9, 0)
    assert intents[CONSUMER].due_at == paris(2026, 11, 27, 9, 0)


def test_the_task_says_what_is_unpaid_until_when_and_what_stops_the_clock(
    loaded: Store, settings: Settings
) -> None:
    texts = RULE.texts(loaded, settings)
    business = texts[BUSINESS]
    # amounts as French typography writes them: narrow and plain no-break spaces
    assert "La facture F-2021-050 de 12\u202f000,00\xa0€ pour « Audit du SI » (ACME SA)" in (
        business
    )
    assert "reste impayée à hauteur de 7\u202f000,00\xa0€." in business
    assert "Après le 8 décembre 2026, elle ne pourra plus être réclamée en justice" in business
    assert "se prescrit par 5 ans entre professionnels (art. L110-4 du Code de commerce)" in (
        business
    )
    assert (
        "Une mise en demeure, même en recommandé avec accusé de réception, ne l'interrompt pas"
        in (business)
    )
    assert "requête en injonction de payer" in business
    assert "ne l'interrompt pas.\n\nDernier acompte reçu le 10 février 2022" in business
    assert "Jeanne Dupont (tel:+33612345678)" in business
    late = texts[LATE]
    assert "comptés ici à partir du 29 octobre 2021, fin de la mission" in late
    consumer = texts[CONSUMER]
    assert "par 2 ans contre un consommateur (art. L218-2 du Code de la consommation)" in consumer
    assert "reste impayée." in consumer and "acompte" not in consumer


def test_an_english_owner_gets_it_in_english(loaded: Store, tmp_path: Path) -> None:
    settings = owner_settings(tmp_path, IN_ENGLISH)
    intents = RULE.planned(loaded, settings)
    assert intents[BUSINESS].subject == (
        "Invoice F-2021-050 (ACME SA): time-barred after December 8, 2026"
    )
    text = RULE.texts(loaded, settings)[BUSINESS]
    assert "is still unpaid: €7,000.00 left." in text
    assert "A formal notice (mise en demeure), even by registered letter, does not." in text
    assert "time-barred after 5 years between professionals" in text


def test_an_owner_outside_france_gets_no_french_limitation(loaded: Store, tmp_path: Path) -> None:
    assert RULE.planned(loaded, owner_settings(tmp_path, 'country = "BE"\n')) == {}


def test_a_pass_records_it_once(loaded: Store, settings: Settings) -> None:
    RULE.run(loaded, settings, paris(2026, 1, 5, 9, 0))
    recorded, _ = RULE.run(loaded, settings, paris(2026, 6, 8, 9, 0))
    assert set(recorded) == {LATE, BUSINESS}, "LATE, due on 29 April, within its grace"
    assert outbox(loaded)[BUSINESS].state == "pending"
    assert RULE.run(loaded, settings, paris(2026, 6, 8, 9, 0)) == ([], {})
    later, _ = RULE.run(loaded, settings, paris(2026, 8, 3, 9, 0))
    assert BUSINESS not in later
    assert set(outbox(loaded)) == {BUSINESS, LATE}


def test_after_a_long_downtime_it_still_fires_until_the_limit(
    loaded: Store, settings: Settings
) -> None:
    RULE.run(loaded, settings, paris(2026, 1, 5, 9, 0))  # then down for ten months
    recorded, _ = RULE.run(loaded, settings, paris(2026, 11, 30, 9, 0))
    assert set(recorded) == {BUSINESS, LATE, CONSUMER}
    rows = outbox(loaded)
    assert rows[BUSINESS].state == "pending", "a week before the limit: still worth it"
    assert rows[CONSUMER].state == "pending"
    assert rows[LATE].state == "expired", "the limit of 29 October has passed"


def test_paying_cancels_the_pending_alert(loaded: Store, settings: Settings) -> None:
    RULE.run(loaded, settings, paris(2026, 6, 8, 9, 0))
    with loaded.session() as session:
        mark_invoice_paid(session, "F-2021-050", date(2026, 6, 9))
    _, cancelled = RULE.run(loaded, settings, paris(2026, 6, 10, 9, 0))
    assert cancelled == {BUSINESS: "invoice F-2021-050 paid on 2026-06-09"}
    assert outbox(loaded)[BUSINESS].state == "cancelled"
    assert BUSINESS not in RULE.planned(loaded, settings)


def test_a_new_last_day_replaces_the_alert(loaded: Store, settings: Settings) -> None:
    RULE.run(loaded, settings, paris(2026, 6, 8, 9, 0))
    # the work turns out to have ended on 30 November 2021, before the invoice
    change_mission(loaded, "acme-audit", end=date(2021, 11, 30))
    recorded, cancelled = RULE.run(loaded, settings, paris(2026, 6, 9, 9, 0))
    assert cancelled == {BUSINESS: "invoice F-2021-050: the last day to act is now 2026-11-30"}
    assert recorded == ["limitation_alert:F-2021-050:2026-11-30"]
    # 30 May 2026 is a Saturday
    assert outbox(loaded)["limitation_alert:F-2021-050:2026-11-30"].due_at == paris(2026, 6, 1, 9)


MONTH_ENDS = f"""\
{ACME_AND_GLOBEX}
[[clients]]
key = "dupuis"
name = "Marc Dupuis"
kind = "consumer"

[[missions]]
key = "acme-audit"
client = "acme"
title = "Audit du SI"
start = 2019-01-01

[[missions]]
key = "dupuis-cuisine"
client = "dupuis"
title = "Plans de la cuisine"
start = 2019-01-01
""" + "".join(
    f'[[invoices]]\nnumber = "{mission[:4]}-{issued}"\nmission = "{mission}"\namount = 100\n'
    f"issued = {issued}\ndue = {issued}\n"
    for mission in ("acme-audit", "dupuis-cuisine")
    for issued in ("2021-08-31", "2022-02-28", "2022-03-31", "2023-12-31", "2024-02-29")
)


def test_each_alert_is_found_by_the_pass_at_its_due_time(
    store: Store, tmp_path: Path, settings: Settings
) -> None:
    """Months counted from a month's end are clamped: the query must still find each alert
    in a window that ends at its due time, and only there."""
    imported(store, tmp_path, MONTH_ENDS)
    every = RULE.planned(store, settings, paris(2022, 1, 1), paris(2030, 1, 1))
    assert len(every) == 10
    for key, intent in every.items():
        found = RULE.planned(store, settings, intent.due_at - timedelta(hours=1), intent.due_at)
        assert set(found) == {key}, key
        before = RULE.planned(
            store, settings, intent.due_at - timedelta(days=30), intent.due_at - timedelta(hours=1)
        )
        assert key not in before
    assert every["limitation_alert:dupu-2024-02-29:2026-02-28"].due_at == paris(2025, 8, 28, 9)
    assert every["limitation_alert:acme-2024-02-29:2029-02-28"].due_at == paris(2028, 8, 28, 9)


def test_check_offline_renders_a_user_limitation_template(
    cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo has an alert, so `check` renders the user's template of it with sample data."""
    mine = tmp_path / "mine" / "fr" / "limitation_alert" / "alert.j2"
    mine.parent.mkdir(parents=True)
    mine.write_text("{% block subject %}{{ invoice.numbr }}{% endblock %}", "utf-8")
    result = checked(cli, tmp_path, monkeypatch)
    assert result.code == 78, result
    shown = " ".join(result.out.split())
    assert f"template {mine} FAILED line 1: no field 'numbr' here" in shown
    assert "(rendering limitation_alert alert in fr)" in shown
