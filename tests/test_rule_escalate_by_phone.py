"""`escalate_by_phone` through the engine, on hand-made stores of both engines."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from followupd.config.load import parse_settings
from followupd.config.settings import Settings
from followupd.domain.states import FollowUpState
from followupd.rules.escalate_by_phone import EscalateByPhone
from followupd.rules.registry import RULES
from followupd.store.db import Store
from followupd.store.updates import mark_invoice_paid, resolve_issue
from tests.conftest import sample_followup
from tests.rulekit import (
    ACME_AND_GLOBEX,
    BOB,
    BSMITH_WITH_PHONE,
    CLAIRE,
    IN_ENGLISH,
    JDUPONT,
    RuleAlone,
    imported,
    loaded_with,
    mission_record,
    outbox,
    owner_settings,
    paris,
)
from tests.rulekit import settings as settings

SUMMARY = "Extraction des données client en retard de deux semaines"
DATA = f"""\
{ACME_AND_GLOBEX}
{JDUPONT}
{BSMITH_WITH_PHONE}
[[missions]]
key = "acme-audit"
client = "acme"
title = "Audit du SI"
contact = "jdupont"
start = 2026-09-01

[[missions]]
key = "acme-old"
client = "acme"
title = "Ancienne mission"
contact = "jdupont"
start = 2025-01-06
status = "closed"

[[missions]]          # no contact: the task names the client
key = "acme-rh"
client = "acme"
title = "Recrutement"
start = 2026-09-01

[[missions]]
key = "globex-plan"
client = "globex"
title = "Data plan"
contact = "bsmith"
start = 2026-09-01
currency = "USD"

[[issues]]            # Tuesday; Wednesday 11 November is a French public holiday
key = "late-data"
mission = "acme-audit"
opened = 2026-11-10T10:00:00+01:00
severity = "high"
summary = "{SUMMARY}"

[[issues]]            # a Friday afternoon: one working day later is Monday
key = "vpn-down"
mission = "acme-audit"
opened = 2026-11-13T16:00:00+01:00
severity = "critical"
summary = "Accès VPN coupé"

[[issues]]
key = "typo"
mission = "acme-audit"
opened = 2026-11-10T10:00:00+01:00
severity = "medium"
summary = "Coquille dans le rapport"

[[issues]]
key = "fixed"
mission = "acme-audit"
opened = 2026-11-10T10:00:00+01:00
severity = "high"
summary = "Serveur de test indisponible"
resolved = 2026-11-10T18:00:00+01:00

[[issues]]
key = "old-leak"
mission = "acme-old"
opened = 2026-11-10T10:00:00+01:00
severity = "critical"
summary = "Fuite de données"

[[issues]]
key = "no-badge"
mission = "acme-rh"
opened = 2026-11-10T11:00:00+01:00
severity = "high"
summary = "Badges non livrés"

[[issues]]            # a Wednesday; Thursday 26 November is Thanksgiving in the US
key = "gx-outage"
mission = "globex-plan"
opened = 2026-11-25T10:00:00-05:00
severity = "high"
summary = "Warehouse outage"

[[invoices]]          # due Friday 30 October: + 30 days is Sunday 29 November
number = "F-1"
mission = "acme-audit"
amount = 12000.00
issued = 2026-09-30
due = 2026-10-30

[[invoices]]          # due 12 October: + 30 days is 11 November, a holiday in both countries
number = "F-2"
mission = "globex-plan"
amount = 5000
issued = 2026-09-12
due = 2026-10-12

[[invoices]]
number = "F-3"
mission = "acme-audit"
amount = 800
issued = 2026-09-30
due = 2026-10-30
paid = 2026-11-02

[[touchpoints]]
mission = "acme-audit"
contact = "jdupont"
kind = "call"
at = 2026-11-09T15:00:00+01:00
note = "Jeanne attend le feu vert de sa DSI pour l'extraction"
"""


RULE = RuleAlone(EscalateByPhone, paris(2026, 11, 1), paris(2027, 1, 1))
loaded = loaded_with(DATA)


def test_the_rule_is_registered_under_its_config_name() -> None:
    assert RULES["escalate_by_phone"] is EscalateByPhone


def test_an_unresolved_serious_issue_becomes_one_call_task_after_a_working_day(
    loaded: Store, settings: Settings
) -> None:
    intents = RULE.planned(loaded, settings)
    call = intents["escalate_by_phone:late-data:call"]
    assert (call.rule, call.step, call.subject_key) == ("escalate_by_phone", "call", "late-data")
    assert (call.audience, call.channel, call.recipient) == ("owner", "calendar", None)
    assert call.language == "fr"
    # opened Tuesday 10th; Wednesday 11th is Armistice Day: the call is on Thursday
    assert call.due_at == paris(2026, 11, 12, 9, 0)
    assert call.expires_at == paris(2026, 11, 19, 9, 0)
    assert call.subject == f"Appeler Jeanne Dupont — {SUMMARY}"
    assert call.mission_id is not None
    assert call.contact_id is not None
    # one working day after a Friday is the Monday
    assert intents["escalate_by_phone:vpn-down:call"].due_at == paris(2026, 11, 16, 9, 0)
    # a US client: the owner's zone, and Thanksgiving skipped as well as the weekend
    outage = intents["escalate_by_phone:gx-outage:call"]
    assert outage.due_at == paris(2026, 11, 27, 9, 0)
    assert outage.subject == "Appeler Bob Smith — Warehouse outage"
    # medium severity, resolved, or on a closed mission: no call
    assert not {"typo", "fixed", "old-leak"} & {i.subject_key for i in intents.values()}
    assert [i.step for i in intents.values() if i.subject_key == "late-data"] == ["call"]


def test_an_invoice_thirty_days_overdue_becomes_a_call_task(
    loaded: Store, settings: Settings
) -> None:
    intents = RULE.planned(loaded, settings)
    call = intents["escalate_by_phone:F-1:overdue-call"]
    assert (call.step, call.subject_key) == ("overdue-call", "F-1")
    assert (call.audience, call.channel, call.recipient) == ("owner", "calendar", None)
    assert call.due_at == paris(2026, 11, 30, 9, 0)  # due + 30 is a Sunday
    assert call.subject == "Appeler Jeanne Dupont — facture F-1 impayée depuis le 30 octobre 2026"
    # due + 30 is 11 November, a public holiday in France and in the US
    assert intents["escalate_by_phone:F-2:overdue-call"].due_at == paris(2026, 11, 12, 9, 0)
    assert "escalate_by_phone:F-3:overdue-call" not in intents  # paid


def test_one_call_for_a_contacts_late_invoices(store: Store, tmp_path: Path) -> None:
    """F-4 (due 10 November) is 20 days late at F-1's call on 30 November: listed there, no
    call of its own. F-5 (due 20 November) is only 10 days late then: its own call, on
    Monday 21 December, lists F-1 and F-4, still unpaid."""
    extra = (
        '[[invoices]]\nnumber = "F-4"\nmission = "acme-old"\namount = 2400\n'
        "issued = 2026-10-10\ndue = 2026-11-10\n"
        "payments = [{ on = 2026-11-20, amount = 400 }]\n\n"
        '[[invoices]]\nnumber = "F-5"\nmission = "acme-audit"\namount = 900\n'
        "issued = 2026-10-20\ndue = 2026-11-20\n"
    )
    loaded = imported(store, tmp_path, DATA + extra)
    settings = owner_settings(tmp_path)
    plan = RULE.planned(loaded, settings)
    assert "escalate_by_phone:F-4:overdue-call" not in plan, "listed in F-1's call"
    first = plan["escalate_by_phone:F-1:overdue-call"]
    assert first.subject == (
        "Appeler Jeanne Dupont — facture F-1 impayée depuis le 30 octobre 2026, et 1 autre"
    )
    texts = RULE.texts(loaded, settings)
    assert (
        "À évoquer au même appel, l'autre facture en retard :\n- F-4 : 2\u202f000,00\xa0€, "
        "échue depuis 20 jours" in texts["escalate_by_phone:F-1:overdue-call"]
    )
    later = plan["escalate_by_phone:F-5:overdue-call"]
    assert later.due_at == paris(2026, 12, 21, 9, 0)
    assert "- F-1 : " in texts["escalate_by_phone:F-5:overdue-call"]
    assert "- F-4 : " in texts["escalate_by_phone:F-5:overdue-call"]
    # recorded, F-1's call still covers F-4 on a later pass
    RULE.pass_at(loaded, settings, paris(2026, 11, 30, 9, 5))
    assert "escalate_by_phone:F-4:overdue-call" not in RULE.planned(
        loaded, settings, paris(2026, 12, 1)
    )


def test_a_partly_paid_invoices_call_says_what_is_left(store: Store, tmp_path: Path) -> None:
    """The call says what the client still owes, not the invoice's amount as if none of it
    had been paid."""
    paid_in_part = DATA.replace(
        'number = "F-2"\nmission = "globex-plan"\namount = 5000\n',
        'number = "F-2"\nmission = "globex-plan"\namount = 5000\n'
        "payments = [{ on = 2026-10-20, amount = 1500 }]\n",
    )
    assert paid_in_part != DATA
    loaded = imported(store, tmp_path, paid_in_part)
    french = RULE.texts(loaded, owner_settings(tmp_path))["escalate_by_phone:F-2:overdue-call"]
    assert "reste impayée pour 3\u202f500,00\xa0$" in french, french
    english = RULE.texts(loaded, owner_settings(tmp_path, IN_ENGLISH))
    assert "still has $3,500.00 unpaid" in english["escalate_by_phone:F-2:overdue-call"]


def test_an_english_speaking_owner_gets_english_tasks(loaded: Store, tmp_path: Path) -> None:
    settings = owner_settings(tmp_path, IN_ENGLISH)
    intents = RULE.planned(loaded, settings)
    call = intents["escalate_by_phone:late-data:call"]
    assert call.language == "en"
    assert call.subject == f"Call Jeanne Dupont — {SUMMARY}"
    assert call.due_at == paris(2026, 11, 12, 9, 0)
    overdue = intents["escalate_by_phone:F-2:overdue-call"]
    assert overdue.subject == "Call Bob Smith — invoice F-2 unpaid since October 12, 2026"
    text = RULE.texts(loaded, settings)["escalate_by_phone:late-data:call"]
    assert "Call Jeanne Dupont: tel:+33612345678." in text
    assert 'A high-severity problem on "Audit du SI" (ACME SA)' in text
    assert "As of November 12, 2026, the client has not been told." in text
    assert "Last exchange: call on November 9, 2026" in text


def test_the_task_says_who_to_call_the_number_why_and_what_was_last_said(
    loaded: Store, settings: Settings
) -> None:
    rendered = RULE.texts(loaded, settings)
    call = rendered["escalate_by_phone:late-data:call"]
    assert "Appeler Jeanne Dupont : tel:+33612345678." in call
    assert "Problème grave sur « Audit du SI » (ACME SA), ouvert le 10 novembre 2026" in call
    assert SUMMARY in call
    # dated: still true when the client is told after the task is written (it is not rewritten)
    assert "Au 12 novembre 2026, le client n'en a pas encore été informé." in call
    assert (
        "Dernier échange : appel le 9 novembre 2026 : "
        "« Jeanne attend le feu vert de sa DSI pour l'extraction »." in call
    )
    overdue = rendered["escalate_by_phone:F-1:overdue-call"]
    assert "La facture F-1 de 12\u202f000,00\xa0€ pour « Audit du SI »" in overdue
    assert "échue le 30 octobre 2026" in overdue
    # no written reminder of F-1 was sent (plan sends nothing): the task claims none
    assert "reste impayée. Aucune relance écrite n'a été envoyée jusqu'ici." in overdue
    assert "malgré" not in overdue
    assert "tel:+33612345678" in overdue
    assert "tel:+12125550100" in rendered["escalate_by_phone:F-2:overdue-call"]
    nobody = rendered["escalate_by_phone:no-badge:call"]
    assert "Aucun contact sur la mission : appeler ACME SA." in nobody
    assert "tel:" not in nobody
    assert "Dernier échange" not in nobody


def test_an_overdue_call_counts_the_written_reminders_actually_sent(
    loaded: Store, settings: Settings, tmp_path: Path
) -> None:
    with loaded.session() as session:
        for step, state in (("nudge-1", "sent"), ("nudge-2", "sent"), ("nudge-3", "expired")):
            row = sample_followup(f"invoice_due:F-1:{step}", paris(2026, 11, 2, 9, 0))
            row.thread_key, row.state = "invoice:F-1", FollowUpState(state)
            session.add(row)
    overdue = RULE.texts(loaded, settings)["escalate_by_phone:F-1:overdue-call"]
    assert "échue le 30 octobre 2026, reste impayée malgré 2 relances écrites." in overdue
    english = RULE.texts(loaded, owner_settings(tmp_path, IN_ENGLISH))
    assert "unpaid despite 2 written reminders." in english["escalate_by_phone:F-1:overdue-call"]


def test_the_overdue_call_says_how_to_record_a_promise_made_on_the_phone(
    loaded: Store, settings: Settings, tmp_path: Path
) -> None:
    """The call is where a client promises: its task says how to note it (a completed task
    with "promis DATE" is read back, `followupd.sources.caldav.promised`)."""
    overdue = RULE.texts(loaded, settings)["escalate_by_phone:F-1:overdue-call"]
    assert (
        "Si Jeanne Dupont promet une date de règlement, ajouter aux notes de cette tâche une "
        "ligne « promis » suivie de la date (jour/mois/année), puis la cocher" in overdue
    )
    assert "followupd invoice promised F-1 --on AAAA-MM-JJ." in overdue
    english = RULE.texts(loaded, owner_settings(tmp_path, IN_ENGLISH))
    assert (
        'add to this task\'s notes a line with "promised" and the date'
        in (english["escalate_by_phone:F-1:overdue-call"])
    )


def test_a_mission_without_contact_names_the_client(loaded: Store, settings: Settings) -> None:
    call = RULE.planned(loaded, settings)["escalate_by_phone:no-badge:call"]
    assert call.subject == "Appeler ACME SA — Badges non livrés"
    assert call.contact_id is None
    assert call.due_at == paris(2026, 11, 12, 9, 0)


def test_disputes_and_pauses_do_not_stop_the_calls(
    loaded: Store, settings: Settings, tmp_path: Path
) -> None:
    changed = mission_record(
        "acme-audit",
        "Audit du SI",
        "2026-09-01",
        'status = "disputed"',
        "paused_until = 2027-01-01",
    )
    imported(loaded, tmp_path, changed, name="update.toml")
    intents = RULE.planned(loaded, settings)
    assert intents["escalate_by_phone:late-data:call"].due_at == paris(2026, 11, 12, 9, 0)
    assert intents["escalate_by_phone:F-1:overdue-call"].due_at == paris(2026, 11, 30, 9, 0)


def test_a_pass_records_each_call_once_and_plan_records_nothing(
    loaded: Store, settings: Settings
) -> None:
    RULE.planned(loaded, settings)
    assert outbox(loaded) == {}, "plan changes nothing"
    at = paris(2026, 11, 12, 9, 0)
    first = RULE.pass_at(loaded, settings, at)
    keys = {row.key: row for row in first.recorded}
    assert set(keys) == {
        "escalate_by_phone:late-data:call",
        "escalate_by_phone:no-badge:call",
        "escalate_by_phone:F-2:overdue-call",
    }
    assert keys["escalate_by_phone:late-data:call"].state == "pending"
    assert not keys["escalate_by_phone:late-data:call"].late
    second = RULE.pass_at(loaded, settings, at)
    assert second.recorded == []
    assert second.cancelled == {}


def test_resolving_the_issue_cancels_the_pending_call(loaded: Store, settings: Settings) -> None:
    RULE.pass_at(loaded, settings, paris(2026, 11, 12, 9, 0))
    with loaded.session() as session:
        resolve_issue(session, "late-data", paris(2026, 11, 20, 17, 0))
    report = RULE.pass_at(loaded, settings, paris(2026, 11, 20, 18, 0))
    reason = "issue late-data resolved on 2026-11-20"
    assert report.cancelled == {"escalate_by_phone:late-data:call": reason}
    row = outbox(loaded)["escalate_by_phone:late-data:call"]
    assert (row.state, row.reason) == ("cancelled", reason)
    assert "escalate_by_phone:vpn-down:call" in {row.key for row in report.recorded}


def test_lowering_the_severity_or_closing_the_mission_cancels_the_call(
    loaded: Store, settings: Settings, tmp_path: Path
) -> None:
    RULE.pass_at(loaded, settings, paris(2026, 11, 16, 9, 0))
    imported(
        loaded,
        tmp_path,
        f'[[issues]]\nkey = "late-data"\nmission = "acme-audit"\n'
        f'opened = 2026-11-10T10:00:00+01:00\nseverity = "medium"\nsummary = "{SUMMARY}"\n',
        name="update.toml",
    )
    report = RULE.pass_at(loaded, settings, paris(2026, 11, 16, 10, 0))
    assert report.cancelled == {
        "escalate_by_phone:late-data:call": "issue late-data lowered to medium severity"
    }
    closed = mission_record("acme-audit", "Audit du SI", "2026-09-01", 'status = "closed"')
    imported(loaded, tmp_path, closed, name="update.toml")
    report = RULE.pass_at(loaded, settings, paris(2026, 11, 16, 11, 0))
    assert report.cancelled == {"escalate_by_phone:vpn-down:call": "mission acme-audit closed"}
    # an unpaid invoice still calls for a call on a closed mission
    assert "escalate_by_phone:F-1:overdue-call" in RULE.planned(loaded, settings)


def test_paying_the_invoice_cancels_the_pending_call(loaded: Store, settings: Settings) -> None:
    RULE.pass_at(loaded, settings, paris(2026, 11, 30, 9, 0))
    assert outbox(loaded)["escalate_by_phone:F-1:overdue-call"].state == "pending"
    with loaded.session() as session:
        mark_invoice_paid(session, "F-1", paris(2026, 12, 2).date())
    report = RULE.pass_at(loaded, settings, paris(2026, 12, 3, 9, 0))
    assert report.cancelled == {
        "escalate_by_phone:F-1:overdue-call": "invoice F-1 paid on 2026-12-02"
    }
    assert outbox(loaded)["escalate_by_phone:F-1:overdue-call"].state == "cancelled"
    assert "escalate_by_phone:F-1:overdue-call" not in RULE.planned(loaded, settings)


def test_two_owners_sharing_a_contact_each_call_about_their_own_invoices(
    store: Store, tmp_path: Path
) -> None:
    """Jeanne Dupont is the contact of Claire's mission (F-1, due 30 October) and of Bob's
    (B-1, due 5 November): each owner gets a call about their own invoice, Claire's lists
    nothing of Bob's, and Claire's call recorded first does not stand for Bob's."""
    config = CLAIRE + BOB
    settings = parse_settings(config, tmp_path / "followupd.toml", {"HOME": str(tmp_path)})
    bobs = (
        mission_record("bob-audit", "Audit de Bob", "2026-09-01", 'contact = "jdupont"')
        + 'owner = "bob"\n\n[[invoices]]\nnumber = "B-1"\nmission = "bob-audit"\n'
        "amount = 3000\nissued = 2026-10-05\ndue = 2026-11-05\n"
    )
    imported(store, tmp_path, DATA + bobs, ["claire", "bob"])
    claires, bobs_call = "escalate_by_phone:F-1:overdue-call", "escalate_by_phone:B-1:overdue-call"
    plan = RULE.planned(store, settings)
    assert str(plan[claires].subject).endswith("depuis le 30 octobre 2026"), "no other invoice"
    assert bobs_call in plan
    RULE.pass_at(store, settings, paris(2026, 11, 30, 9, 5))
    RULE.pass_at(store, settings, paris(2026, 12, 7, 9, 5))  # + 30 days is Saturday 5 December
    rows = outbox(store)
    assert (rows[claires].owner, rows[bobs_call].owner) == ("claire", "bob")


def test_a_missed_call_lists_nothing_and_the_next_call_stands(store: Store, tmp_path: Path) -> None:
    """F-0 (due 15 October) gives a call on Monday 16 November that lists F-1 (due 30
    October, 17 days late then): a plan of the whole autumn has no call of F-1's own. But
    followupd first runs on 30 November, past F-0's grace: F-0's call is never recorded, so
    nothing listed F-1, and F-1's own call, due that morning, is recorded and lists F-0."""
    extra = (
        '[[invoices]]\nnumber = "F-0"\nmission = "acme-audit"\namount = 300\n'
        "issued = 2026-09-15\ndue = 2026-10-15\n"
    )
    loaded = imported(store, tmp_path, DATA + extra)
    settings = owner_settings(tmp_path)
    plan = RULE.planned(loaded, settings)
    assert plan["escalate_by_phone:F-0:overdue-call"].due_at == paris(2026, 11, 16, 9, 0)
    assert "escalate_by_phone:F-1:overdue-call" not in plan, "listed in F-0's call"
    at = paris(2026, 11, 30, 9, 5)
    recorded, cancelled = RULE.run(loaded, settings, at)
    assert "escalate_by_phone:F-0:overdue-call" not in recorded, "past its grace"
    assert "escalate_by_phone:F-1:overdue-call" in recorded
    assert cancelled == {}
    call = outbox(loaded)["escalate_by_phone:F-1:overdue-call"]
    assert call.state == FollowUpState.PENDING
    assert call.subject == (
        "Appeler Jeanne Dupont — facture F-1 impayée depuis le 30 octobre 2026, et 1 autre"
    )
    assert "- F-0 : 300,00\xa0€, échue depuis 46 jours" in call.body
    assert RULE.run(loaded, settings, at + timedelta(days=1)) == ([], {})


def test_a_later_call_does_not_stand_for_an_earlier_one(store: Store, tmp_path: Path) -> None:
    """F-6's call (Tuesday 19 January) lists F-1 and F-7; it does not stand for their own
    calls, due before it. F-7 (due 18 December, its call on Monday 18 January) comes in
    the data after F-6's call was recorded: its call, still within its grace, is recorded,
    and a plan of the autumn still has F-1's call of 30 November."""
    f6 = (
        '[[invoices]]\nnumber = "F-6"\nmission = "acme-audit"\namount = 600\n'
        "issued = 2026-11-20\ndue = 2026-12-20\n"
    )
    f7 = (
        '[[invoices]]\nnumber = "F-7"\nmission = "acme-audit"\namount = 700\n'
        "issued = 2026-11-18\ndue = 2026-12-18\n"
    )
    loaded = imported(store, tmp_path, DATA + f6)
    settings = owner_settings(tmp_path)
    recorded, _ = RULE.run(loaded, settings, paris(2027, 1, 19, 9, 5))
    assert recorded == ["escalate_by_phone:F-6:overdue-call"]
    assert "- F-1 : " in outbox(loaded)["escalate_by_phone:F-6:overdue-call"].body
    autumn = RULE.planned(loaded, settings)
    assert autumn["escalate_by_phone:F-1:overdue-call"].due_at == paris(2026, 11, 30, 9, 0)
    imported(loaded, tmp_path, DATA + f6 + f7)
    recorded, cancelled = RULE.run(loaded, settings, paris(2027, 1, 19, 10, 0))
    assert recorded == ["escalate_by_phone:F-7:overdue-call"], "F-6's call did not list F-7"
    assert cancelled == {}
    call = outbox(loaded)["escalate_by_phone:F-7:overdue-call"]
    assert call.state == FollowUpState.PENDING
    assert call.due_at == paris(2027, 1, 18, 9, 0)
