"""Two owners, one store: each owner's follow-ups go to their address and their calendar.

Claire (the first owner) has ACME's audit; Bob, in Montreal and writing
English, has Lumen's CRM mission, with his own invoice steps and templates.
Real servers throughout: SQLite and PostgreSQL, aiosmtpd, Radicale.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from followupd.config.load import parse_settings
from followupd.config.settings import Settings
from followupd.delivery.deliverer import Deliverer, DeliveryReport
from followupd.engine.evaluation import evaluate, plan
from followupd.errors import DataError
from followupd.rules.registry import enabled_rules
from followupd.sources.files.importer import import_files
from followupd.store.db import Store
from followupd.store.models import FollowUp, Mission
from tests.conftest import RunCli
from tests.davserver import PASSWORD_VARIABLE, USER, DavServer
from tests.rulekit import ACME, BOB_IN_MONTREAL, CLAIRE, PARIS, imported, outbox, paris
from tests.smtpserver import Recorder, smtp_server
from tests.test_calendar_channel import remote

MONTREAL = ZoneInfo("America/Montreal")
OWNERS = (
    CLAIRE
    + 'phone = "+33 6 00 00 00 00"\nreminders_by_email = "each"\n\n'
    + BOB_IN_MONTREAL
    + 'reminders_by_email = "each"\ntemplates = "bob-templates"\n'
    + "[owners.rules.invoice_due]\nsteps = [\n"
    + '  { name = "heads-up", offset_days = -5, audience = "owner" },\n'
    + '  { name = "nudge-1", offset_days = 1, audience = "client" },\n]\n'
)
DATA = (
    ACME
    + """\
[[clients]]
key = "lumen"
name = "Lumen SAS"
country = "FR"
[[contacts]]
key = "ibernard"
client = "lumen"
name = "Isabelle Bernard"
email = "isabelle.bernard@lumen.example"
[[missions]]
key = "lumen-crm"
client = "lumen"
title = "Refonte du CRM"
contact = "ibernard"
start = 2026-11-16
owner = "bob"
"""
    + "".join(
        f'[[invoices]]\nnumber = "{number}"\nmission = "{mission}"\namount = {amount}\n'
        "issued = 2026-10-31\ndue = 2026-11-30\n"
        for number, mission, amount in (("F-1", "acme-audit", 12000), ("F-2", "lumen-crm", 3000))
    )
)
RULES = ("invoice_due", "contract_missing")


@pytest.fixture
def smtp() -> Iterator[tuple[Recorder, int]]:
    with smtp_server() as running:
        yield running


def owners_settings(
    tmp_path: Path, smtp_port: int | None = None, dav: DavServer | None = None, extra: str = ""
) -> Settings:
    templates = tmp_path / "bob-templates" / "en" / "invoice_due"
    templates.mkdir(parents=True, exist_ok=True)
    (templates / "nudge-1.j2").write_text(
        "{% block subject %}Invoice {{ invoice.number }}, from Bob{% endblock %}\n"
        "{% block text %}Kind regards,\n{{ owner.name }}{% endblock %}\n",
        encoding="utf-8",
    )
    text = extra
    if smtp_port is not None:
        text += f'[smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nsecurity = "none"\n'
    if dav is not None:
        text += (f'[caldav]\nurl = "{dav.url}"\nusername = "{USER}"\n'
                 f'password_env = "{PASSWORD_VARIABLE}"\n')  # fmt: skip
    text += OWNERS
    return parse_settings(text, tmp_path / "followupd.toml", {"HOME": str(tmp_path)})


@pytest.fixture
def loaded(store: Store, tmp_path: Path) -> Store:
    return imported(store, tmp_path, DATA, ["claire", "bob"])


def tick(store: Store, settings: Settings, at: datetime) -> DeliveryReport:
    rules = [rule for rule in enabled_rules(settings.rules, settings.owners) if rule.name in RULES]
    with store.session() as session:
        evaluate(session, settings, rules, at)
    deliverer = Deliverer(store, settings, "w1", rng=random.Random(2))

    async def both() -> DeliveryReport:
        report = await deliverer.run(at)
        await deliverer.close_vanished(at, report)
        return report

    return asyncio.run(both())


def to(recorder: Recorder, address: str) -> list[EmailMessage]:
    return [message for message in recorder.messages if message["To"] == address]


# -- data files ---------------------------------------------------------------------------


def test_missions_are_stored_with_their_owner(loaded: Store) -> None:
    with loaded.session() as session:
        owners = dict(session.execute(select(Mission.key, Mission.owner)).all())
    assert owners == {"acme-audit": None, "lumen-crm": "bob"}, "no owner given: the first one"


def test_an_unknown_owner_is_a_data_error_naming_file_record_and_field(
    store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "data.toml"
    path.write_text(DATA.replace('owner = "bob"', 'owner = "bobb"'), encoding="utf-8")
    with pytest.raises(DataError) as caught:
        import_files(store, [path], PARIS, ["claire", "bob"])
    (problem,) = caught.value.problems
    assert caught.value.exit_code == 65
    line = DATA.splitlines().index('owner = "bob"') + 1
    assert str(problem) == (
        f"{path}:{line}: missions[1] (lumen-crm) owner: refers to owner 'bobb', "
        "which is not in the config; did you mean 'bob'?"
    )
    with store.session() as session:
        assert session.scalars(select(Mission)).all() == [], "nothing was imported"


def test_the_single_owner_form_knows_one_owner_only(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "data.toml"
    path.write_text(DATA, encoding="utf-8")
    with pytest.raises(DataError) as caught:
        import_files(store, [path], PARIS)
    assert "refers to owner 'bob', which is not in the config (owners: owner)" in str(caught.value)


@pytest.mark.slow
def test_import_from_the_command_line_checks_owners(home: Path, cli: RunCli) -> None:
    (home / "followupd.toml").write_text(OWNERS.replace('templates = "bob-templates"\n', ""))
    assert cli("init").code == 0
    data = home / "data.json"
    data.write_text(
        '{"clients": [{"key": "lumen", "name": "Lumen"}], "missions": [{"key": "crm", '
        '"client": "lumen", "title": "CRM", "start": "2026-11-16", "owner": "alice"}]}',
        encoding="utf-8",
    )
    result = cli("import", data)
    assert result.code == 65, result
    assert "missions[0] (crm) owner: refers to owner 'alice'" in result.err
    assert "(owners: claire, bob)" in result.err
    data.write_text(data.read_text().replace("alice", "bob"), encoding="utf-8")
    assert cli("import", data).code == 0
    listed = cli("missions")
    assert listed.code == 0, listed
    assert "owner" in listed.out.splitlines()[0] and "bob" in listed.out
    assert "crm" in cli("missions", "--owner", "bob").out
    assert "crm" not in cli("missions", "--owner", "claire").out
    planned = json.loads(cli("plan", "--from", "2026-11-09", "--to", "2026-11-12", "--json").out)
    shown = {(f["key"], f["owner"], f["recipient"]) for f in planned["followups"]}
    assert shown == {
        ("contract_missing:crm:2026-11-09:calendar", "bob", None),
        ("contract_missing:crm:2026-11-09:email", "bob", "bob@cabinet.example"),
    }
    table = cli("plan", "--from", "2026-11-09", "--to", "2026-11-12").out
    assert "bob (calendar)" in table and "you (" not in table
    unknown = cli("missions", "--owner", "nobody")
    assert (
        unknown.code == 2 and "no owner 'nobody' in the config (owners: claire, bob)" in unknown.err
    )


# -- evaluation ---------------------------------------------------------------------------


def test_each_owner_gets_their_own_options_zone_and_language(loaded: Store, tmp_path: Path) -> None:
    settings = owners_settings(tmp_path)
    rules = [rule for rule in enabled_rules(settings.rules) if rule.name in RULES]
    with loaded.session() as session:
        intents = plan(session, settings, rules, paris(2026, 11, 20), paris(2026, 12, 2))
    shown = {intent.key: intent for intent in intents}
    claire, bob = shown["invoice_due:F-1:heads-up"], shown["invoice_due:F-2:heads-up"]
    assert (claire.owner, bob.owner) == ("claire", "bob")
    assert claire.due_at == paris(2026, 11, 27, 9), "the global step: due - 3 days"
    assert bob.due_at == datetime(2026, 11, 25, 9, tzinfo=MONTREAL), "bob's: - 5, in his zone"
    assert (claire.language, bob.language) == ("fr", "en")
    assert "invoice_due:F-2:nudge-2" not in shown, "bob's steps stop at nudge-1"
    assert "invoice_due:F-1:nudge-2" not in shown and "invoice_due:F-1:nudge-1" in shown
    nudge = shown["invoice_due:F-2:nudge-1"]
    assert (nudge.language, str(nudge.subject)) == ("en", "Invoice F-2, from Bob")
    email = shown["contract_missing:lumen-crm:2026-11-23:email"]
    assert (email.owner, email.recipient) == ("bob", "bob@cabinet.example")


def test_keys_do_not_name_the_owner(loaded: Store, tmp_path: Path) -> None:
    settings = owners_settings(tmp_path)
    rules = [rule for rule in enabled_rules(settings.rules) if rule.name in RULES]
    with loaded.session() as session:
        keys = {
            i.key for i in plan(session, settings, rules, paris(2026, 11, 20), paris(2026, 12, 2))
        }
    assert "invoice_due:F-2:nudge-1" in keys and not any("bob" in key for key in keys)


# -- delivery -----------------------------------------------------------------------------


@pytest.mark.slow
def test_each_owners_reminders_reach_their_address_and_their_calendar(
    loaded: Store, tmp_path: Path, smtp: tuple[Recorder, int], dav: DavServer
) -> None:
    recorder, port = smtp
    settings = owners_settings(tmp_path, port, dav)

    report = tick(loaded, settings, paris(2026, 11, 25, 16))
    assert sorted(report.sent) == [
        "contract_missing:lumen-crm:2026-11-23:calendar",
        "contract_missing:lumen-crm:2026-11-23:email",
        "invoice_due:F-2:heads-up",
    ]
    (reminder,) = recorder.messages
    assert (reminder["To"], reminder["From"]) == (
        "bob@cabinet.example",
        "Bob Durand <bob@cabinet.example>",
    )
    assert "Refonte du CRM" in str(reminder["Subject"])
    bobs = remote(dav, "followupd-bob")
    assert set(bobs) == {
        "invoice_due:F-2:heads-up@followupd",
        "contract_missing:lumen-crm@followupd",
    }
    due = bobs["invoice_due:F-2:heads-up@followupd"]["DUE"]
    assert (str(due.params["TZID"]), due.dt.hour) == ("America/Montreal", 9)

    tick(loaded, settings, paris(2026, 11, 27, 10))
    assert set(remote(dav, "followupd")) == {"invoice_due:F-1:heads-up@followupd"}
    assert len(remote(dav, "followupd-bob")) == 2, "claire's task is not in bob's calendar"

    # a client with no time zone of its own has its mission owner's: Lumen's is Montreal's
    tick(loaded, settings, paris(2026, 12, 1, 16))
    (to_acme,) = to(recorder, "jeanne.dupont@acme.example")
    (to_lumen,) = to(recorder, "isabelle.bernard@lumen.example")
    assert (to_acme["From"], to_acme["Reply-To"]) == (
        "Claire Martin <claire@cabinet.example>",
        "claire@cabinet.example",
    )
    assert (to_lumen["From"], to_lumen["Reply-To"]) == (
        "Bob Durand <bob@cabinet.example>",
        "bob@cabinet.example",
    )
    assert to_lumen["Subject"] == "Invoice F-2, from Bob"
    body = to_lumen.get_body(("plain",))
    assert body is not None and body.get_content().rstrip().endswith("Bob Durand")
    assert to(recorder, "claire@cabinet.example") == [], "claire's mission has a contract"
    assert len(to(recorder, "bob@cabinet.example")) == 2, "bob's reminders of 23 and 30 November"
    rows = outbox(loaded)
    assert rows["invoice_due:F-2:nudge-1"].due_at == datetime(2026, 12, 1, 9, tzinfo=MONTREAL)
    assert {key: row.owner for key, row in rows.items()} == {
        "contract_missing:lumen-crm:2026-11-23:calendar": "bob",
        "contract_missing:lumen-crm:2026-11-23:email": "bob",
        "contract_missing:lumen-crm:2026-11-30:calendar": "bob",
        "contract_missing:lumen-crm:2026-11-30:email": "bob",
        "invoice_due:F-2:heads-up": "bob",
        "invoice_due:F-1:heads-up": "claire",
        "invoice_due:F-1:nudge-1": "claire",
        "invoice_due:F-2:nudge-1": "bob",
    }


@pytest.mark.slow
def test_smtp_from_stays_the_sender_and_the_owner_gets_the_replies(
    loaded: Store, tmp_path: Path, smtp: tuple[Recorder, int]
) -> None:
    recorder, port = smtp
    settings = owners_settings(tmp_path, port)
    text = settings.source.parent / "with-from.toml"
    config = (
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
        'from = "Cabinet Martin <contact@cabinet.example>"\n' + OWNERS
    )
    text.write_text(config, encoding="utf-8")
    settings = parse_settings(config, text, {"HOME": str(tmp_path)})
    tick(loaded, settings, paris(2026, 12, 1, 16))
    (to_lumen,) = to(recorder, "isabelle.bernard@lumen.example")
    assert to_lumen["From"] == "Cabinet Martin <contact@cabinet.example>"
    assert to_lumen["Reply-To"] == "bob@cabinet.example"


def test_an_owner_reassigned_keeps_what_was_recorded_and_gets_what_comes(
    loaded: Store, tmp_path: Path
) -> None:
    """Follow-ups are recorded for an owner: a mission moved later changes the next ones."""
    settings = owners_settings(tmp_path)
    tick(loaded, settings, paris(2026, 11, 25, 16))
    with loaded.session() as session:
        mission = session.scalars(select(Mission).where(Mission.key == "lumen-crm")).one()
        mission.owner = "claire"
    tick(loaded, settings, paris(2026, 11, 30, 16))
    rows = outbox(loaded)
    assert rows["contract_missing:lumen-crm:2026-11-23:email"].owner == "bob"
    later = rows["contract_missing:lumen-crm:2026-11-30:email"]
    assert (later.owner, later.recipient) == ("claire", "claire@cabinet.example")
    with loaded.session() as session:
        recorded = session.scalars(select(FollowUp.key).where(FollowUp.owner == "claire")).all()
    assert "invoice_due:F-2:heads-up" not in recorded, "recorded once, for bob"


# -- greetings ----------------------------------------------------------------------------

GREETED = """\
[[clients]]
key = "orion"
name = "Orion"
[[contacts]]
key = "pmartin"
client = "orion"
name = "Paul Martin"
email = "paul.martin@orion.example"
[[missions]]
key = "orion-audit"
client = "orion"
title = "Audit"
start = 2026-03-01
end = 2026-06-30
[[missions]]
key = "acme-v2"
client = "acme"
title = "Audit, deuxième phase"
start = 2026-12-01
owner = "bob"
[[missions]]
key = "lumen-2025"
client = "lumen"
title = "Cadrage"
start = 2025-03-01
end = 2025-06-30
owner = "claire"
"""


def test_greetings_come_from_the_owner_of_the_clients_latest_mission(
    loaded: Store, tmp_path: Path
) -> None:
    path = tmp_path / "more.toml"
    path.write_text(GREETED, encoding="utf-8")
    import_files(loaded, [path], PARIS, ["claire", "bob"])
    settings = owners_settings(tmp_path)
    rules = [rule for rule in enabled_rules(settings.rules) if rule.name == "new_year_greetings"]
    with loaded.session() as session:
        intents = plan(session, settings, rules, paris(2027, 1, 1), paris(2027, 1, 31))
    by_contact = {intent.key: intent for intent in intents}
    assert {key: intent.owner for key, intent in by_contact.items()} == {
        "new_year_greetings:jdupont:2027": "bob",  # acme-v2 (bob) started after acme-audit
        "new_year_greetings:ibernard:2027": "bob",  # lumen-crm (bob) is more recent
        "new_year_greetings:pmartin:2027": "claire",  # orion-audit, no owner: the first
    }
    greeting = by_contact["new_year_greetings:jdupont:2027"]
    assert greeting.language == "en", "ACME has no language of its own: its owner's"
    assert greeting.subject.text().rstrip().endswith("Bob Durand")  # type: ignore[union-attr]
