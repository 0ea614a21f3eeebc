"""`deposit_due` through the engine, on hand-made stores of both engines."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from followupd.config.settings import Settings
from followupd.rules.deposit_due import DepositDue
from followupd.rules.registry import RULES
from followupd.store.db import Store
from followupd.store.updates import get_mission
from followupd.templates.loader import Templates
from tests.rulekit import (
    ACME_AND_GLOBEX,
    BSMITH_WITH_PHONE,
    IN_ENGLISH,
    JDUPONT,
    RuleAlone,
    change_mission,
    loaded_with,
    mark_sent,
    new_york,
    outbox,
    owner_settings,
    paris,
)
from tests.rulekit import settings as settings

DATA = f"""\
{ACME_AND_GLOBEX}
{JDUPONT}
[[contacts]]
key = "pmartin"
client = "acme"
name = "Paul Martin"
phone = "+33 6 98 76 54 32"

{BSMITH_WITH_PHONE}
[[missions]]
key = "acme-audit"
client = "acme"
title = "Audit du SI"
contact = "jdupont"
start = 2026-11-04
contract_signed = 2026-10-20
deposit_amount = 3000

[[missions]]
key = "globex-plan"
client = "globex"
title = "Data plan"
contact = "bsmith"
status = "proposed"
start = 2026-09-01
contract_signed = 2026-09-05   # a Saturday, after the start: the anchor
deposit_amount = 5000
currency = "USD"

[[missions]]
key = "acme-training"
client = "acme"
title = "Formation"
contact = "pmartin"            # no email address
status = "on_hold"
start = 2026-11-04
deposit_amount = 1000

[[missions]]
key = "acme-paid"
client = "acme"
title = "Déjà réglé"
contact = "jdupont"
start = 2026-11-04
deposit_amount = 1000
deposit_paid = 2026-11-02

[[missions]]
key = "acme-closed"
client = "acme"
title = "Abandonnée"
contact = "jdupont"
status = "closed"
start = 2026-11-04
deposit_amount = 1000

[[missions]]
key = "acme-free"
client = "acme"
title = "Sans acompte"
contact = "jdupont"
start = 2026-11-04
"""


RULE = RuleAlone(DepositDue, paris(2026, 8, 1), paris(2027, 1, 1))
loaded = loaded_with(DATA)


def test_plan_lists_every_step_with_its_audience_channel_and_time(
    loaded: Store, settings: Settings
) -> None:
    intents = RULE.planned(loaded, settings)
    assert {i.subject_key for i in intents.values()} == {
        "acme-audit",
        "globex-plan",
        "acme-training",
    }, "paid, closed and deposit-less missions get nothing"

    request = intents["deposit_due:acme-audit:request"]
    assert (request.audience, request.channel) == ("client", "email")
    assert request.recipient == "jeanne.dupont@acme.example"
    assert request.language == "fr"
    assert request.due_at == paris(2026, 11, 4, 9, 0)  # the start
    assert request.subject == "Acompte pour la mission « Audit du SI »"
    assert request.thread_key == "deposit:acme-audit"
    nudge = intents["deposit_due:acme-audit:nudge"]
    assert (nudge.audience, nudge.channel) == ("client", "email")
    assert nudge.recipient == "jeanne.dupont@acme.example"
    assert nudge.due_at == paris(2026, 11, 12, 9, 0)  # + 7 is the 11th, a holiday
    assert nudge.thread_key == "deposit:acme-audit"
    call = intents["deposit_due:acme-audit:call"]
    assert (call.audience, call.channel, call.recipient) == ("owner", "calendar", None)
    assert call.due_at == paris(2026, 11, 19, 9, 0)
    assert call.subject == "Appeler Jeanne Dupont — acompte de 3\u202f000,00\xa0€ non réglé"
    assert call.thread_key is None
    assert call.mission_id == request.mission_id is not None
    assert call.contact_id == request.contact_id is not None


def test_the_contract_signed_after_the_start_anchors_the_steps(
    loaded: Store, settings: Settings
) -> None:
    intents = RULE.planned(loaded, settings)
    request = intents["deposit_due:globex-plan:request"]
    assert (request.recipient, request.language) == ("bob@globex.example", "en")
    assert request.subject == 'Deposit for the "Data plan" mission'
    # signed Saturday 5 September; Monday 7 is Labor Day in the US
    assert request.due_at == new_york(2026, 9, 8, 9, 0)
    assert intents["deposit_due:globex-plan:nudge"].due_at == new_york(2026, 9, 14, 9, 0)
    call = intents["deposit_due:globex-plan:call"]
    # Sunday 20 September: the owner's call task is on Monday, in the owner's zone and language
    assert call.due_at == paris(2026, 9, 21, 9, 0)
    assert call.language == "fr"
    assert call.subject == "Appeler Bob Smith — acompte de 5\u202f000,00\xa0$US non réglé"


def test_a_contact_without_email_gets_call_tasks_instead(loaded: Store, settings: Settings) -> None:
    intents = {k: i for k, i in RULE.planned(loaded, settings).items() if "acme-training" in k}
    assert set(intents) == {
        "deposit_due:acme-training:request:call",
        "deposit_due:acme-training:nudge:call",
        "deposit_due:acme-training:call",
    }, "an on-hold mission still waits for its deposit"
    request = intents["deposit_due:acme-training:request:call"]
    assert (request.audience, request.channel, request.recipient) == ("owner", "calendar", None)
    assert request.step == "request"
    assert request.due_at == paris(2026, 11, 4, 9, 0)
    assert request.subject == "Appeler Paul Martin — acompte de 1\u202f000,00\xa0€ non réglé"


def test_an_english_owner_gets_english_reminders(loaded: Store, tmp_path: Path) -> None:
    settings = owner_settings(tmp_path, IN_ENGLISH)
    intents = RULE.planned(loaded, settings)
    call = intents["deposit_due:globex-plan:call"]
    assert call.language == "en"
    assert call.subject == "Call Bob Smith — deposit of $5,000.00 unpaid"
    # the French client still gets French emails
    assert intents["deposit_due:acme-audit:request"].language == "fr"


def test_every_message_renders_with_who_to_call(loaded: Store, settings: Settings) -> None:
    templates = Templates()
    intents = RULE.planned(loaded, settings)
    with loaded.session() as session:
        for intent in intents.values():
            mission = get_mission(session, intent.subject_key)
            values = {
                "mission": mission,
                "client": mission.client,
                "contact": mission.contact,
                "owner": settings.owner,
                "step": intent.step,
                "earlier_emails": 0,
            }
            template_step = "call" if intent.audience == "owner" else intent.step
            for language in ("fr", "en"):
                text = templates.render(language, "deposit_due", template_step, "text", values)
                assert mission.title in text
                assert "{" not in text
        audit = get_mission(session, "acme-audit")
        values = {
            "mission": audit,
            "client": audit.client,
            "contact": audit.contact,
            "owner": settings.owner,
            "step": "call",
            "earlier_emails": 0,
        }
        call = templates.render("fr", "deposit_due", "call", "text", values)
        assert "tel:+33612345678" in call
        assert "attendu depuis le 4 novembre 2026" in call
        email = templates.render("en", "deposit_due", "nudge", "text", values | {"step": "nudge"})
        assert email.startswith("Dear Jeanne Dupont,")
        assert "€3,000.00" in email
        assert email.endswith("Claire Martin")


def test_a_pass_records_due_ones_once_and_plan_changes_nothing(
    loaded: Store, settings: Settings
) -> None:
    RULE.planned(loaded, settings)
    assert outbox(loaded) == {}, "plan changes nothing"
    RULE.run(loaded, settings, paris(2026, 10, 13, 9, 0))  # a pass before a downtime
    at = paris(2026, 11, 19, 9, 0)
    recorded, _ = RULE.run(loaded, settings, at)
    rows = outbox(loaded)
    assert set(recorded) == {key for key in rows if key.startswith("deposit_due:acme-")}
    assert rows["deposit_due:acme-audit:request"].state == "expired"  # due 4/11, 7 days' grace
    assert rows["deposit_due:acme-audit:nudge"].state == "pending"  # grace ends exactly now
    assert rows["deposit_due:acme-audit:nudge"].late
    assert rows["deposit_due:acme-audit:call"].state == "pending"
    assert not rows["deposit_due:acme-audit:call"].late
    assert RULE.run(loaded, settings, at) == ([], {}), "a second pass at the same instant"


def test_a_first_email_never_claims_an_earlier_one(loaded: Store, settings: Settings) -> None:
    """A first start after the request's due time: the reminder is the first email sent."""
    RULE.run(loaded, settings, paris(2026, 11, 19, 9, 0))
    rows = outbox(loaded)
    assert "deposit_due:acme-audit:request" not in rows, "past its grace on a first start"
    first = rows["deposit_due:acme-audit:nudge"].body
    assert "Je reviens vers vous" not in first
    assert "Comme convenu, la mission « Audit du SI » prévoit un acompte" in first
    assert "sauf erreur de ma part, son règlement ne m'est pas encore parvenu" in first
    call = rows["deposit_due:acme-audit:call"].body
    assert "malgré" not in call
    assert "aucun e-mail n'a été envoyé au client à ce sujet jusqu'ici" in call


def test_later_messages_count_the_emails_actually_sent(loaded: Store, settings: Settings) -> None:
    RULE.run(loaded, settings, paris(2026, 11, 4, 9, 0))
    mark_sent(loaded, "deposit_due:acme-audit:request", paris(2026, 11, 4, 9, 1))
    RULE.run(loaded, settings, paris(2026, 11, 12, 9, 0))
    nudge = outbox(loaded)["deposit_due:acme-audit:nudge"].body
    assert "Je reviens vers vous au sujet de l'acompte" in nudge
    RULE.run(loaded, settings, paris(2026, 11, 19, 9, 0))
    call = outbox(loaded)["deposit_due:acme-audit:call"].body
    assert "Acompte toujours non réglé malgré un e-mail au client." in call, "the nudge never left"


def test_paying_the_deposit_stops_the_steps_and_cancels_pending_ones(
    loaded: Store, settings: Settings
) -> None:
    recorded, _ = RULE.run(loaded, settings, paris(2026, 11, 4, 9, 0))
    assert "deposit_due:acme-audit:request" in recorded
    change_mission(loaded, "acme-audit", deposit_paid=date(2026, 11, 5))
    recorded, cancelled = RULE.run(loaded, settings, paris(2026, 11, 20, 9, 0))
    assert cancelled["deposit_due:acme-audit:request"] == "deposit of acme-audit paid on 2026-11-05"
    assert outbox(loaded)["deposit_due:acme-audit:request"].state == "cancelled"
    assert not [key for key in recorded if "acme-audit" in key]


def test_closing_the_mission_cancels_the_owner_call_too(loaded: Store, settings: Settings) -> None:
    RULE.run(loaded, settings, paris(2026, 1, 5, 9, 0))  # a pass before a long downtime
    RULE.run(loaded, settings, paris(2026, 11, 19, 9, 0))
    change_mission(loaded, "acme-audit", status="closed")
    _, cancelled = RULE.run(loaded, settings, paris(2026, 11, 20, 9, 0))
    assert cancelled == {
        "deposit_due:acme-audit:nudge": "mission acme-audit closed",
        "deposit_due:acme-audit:call": "mission acme-audit closed",
    }
    assert outbox(loaded)["deposit_due:acme-audit:request"].state == "expired"


def test_removing_the_deposit_cancels_pending_steps(loaded: Store, settings: Settings) -> None:
    RULE.run(loaded, settings, paris(2026, 11, 4, 9, 0))
    change_mission(loaded, "acme-audit", deposit_amount=None)
    recorded, cancelled = RULE.run(loaded, settings, paris(2026, 11, 12, 9, 0))
    assert cancelled == {
        "deposit_due:acme-audit:request": "no deposit is asked for acme-audit any more"
    }
    assert "deposit_due:acme-audit:nudge" not in recorded


def test_a_dispute_turns_client_emails_into_owner_calls(loaded: Store, settings: Settings) -> None:
    RULE.run(loaded, settings, paris(2026, 11, 4, 9, 0))
    change_mission(loaded, "acme-audit", status="disputed")
    recorded, cancelled = RULE.run(loaded, settings, paris(2026, 11, 12, 9, 0))
    reason = "mission acme-audit disputed: a call task replaces the email"
    assert cancelled == {"deposit_due:acme-audit:request": reason}
    assert "deposit_due:acme-audit:nudge:call" in recorded
    rows = outbox(loaded)
    call = rows["deposit_due:acme-audit:nudge:call"]
    assert (call.audience, call.channel, call.recipient) == ("owner", "calendar", None)
    assert call.state == "pending"
    assert call.subject == "Appeler Jeanne Dupont — acompte de 3\u202f000,00\xa0€ non réglé"
    assert "deposit_due:acme-audit:nudge" not in rows
    # the request's call replaces an email already recorded: too late, past its grace
    assert rows["deposit_due:acme-audit:request:call"].state == "expired"


def test_a_contact_losing_its_address_gets_a_call_instead(
    loaded: Store, settings: Settings
) -> None:
    RULE.run(loaded, settings, paris(2026, 11, 4, 9, 0))
    with loaded.session() as session:
        contact = get_mission(session, "acme-audit").contact
        assert contact is not None
        contact.email = None
    recorded, cancelled = RULE.run(loaded, settings, paris(2026, 11, 12, 9, 0))
    reason = "the contact of acme-audit has no email address: a call task replaces the email"
    assert cancelled == {"deposit_due:acme-audit:request": reason}
    assert "deposit_due:acme-audit:nudge:call" in recorded


def test_a_pause_delays_client_emails_but_not_the_owner(loaded: Store, settings: Settings) -> None:
    change_mission(loaded, "acme-audit", paused_until=date(2026, 11, 16))
    intents = RULE.planned(loaded, settings)
    assert intents["deposit_due:acme-audit:request"].due_at == paris(2026, 11, 16, 9, 0)
    assert intents["deposit_due:acme-audit:nudge"].due_at == paris(2026, 11, 16, 9, 0)
    assert intents["deposit_due:acme-audit:call"].due_at == paris(2026, 11, 19, 9, 0)


def test_a_pause_never_cancels_a_recorded_email(loaded: Store, settings: Settings) -> None:
    """A pause delays: the recorded request stays pending (delivery holds it back)."""
    RULE.run(loaded, settings, paris(2026, 11, 4, 9, 0))
    change_mission(loaded, "acme-audit", paused_until=date(2026, 11, 16))
    recorded, cancelled = RULE.run(loaded, settings, paris(2026, 11, 5, 9, 0))
    assert cancelled == {}
    assert recorded == []
    assert outbox(loaded)["deposit_due:acme-audit:request"].state == "pending"
    # at the end of the pause the next step is recorded as usual
    recorded, cancelled = RULE.run(loaded, settings, paris(2026, 11, 16, 9, 0))
    assert [key for key in recorded if "acme-audit" in key] == ["deposit_due:acme-audit:nudge"]
    assert cancelled == {}


def test_the_rule_registers_under_its_config_name() -> None:
    assert RULES["deposit_due"] is DepositDue
