"""One user template that fails fails its follow-up alone, at once, with its file and line.

Issue 12, point 7: a template that raised for one follow-up stopped the
whole pass (nothing recorded, nothing sent, `tick` exit 1, /healthz 503),
and ``{{ 'x' * 100000000 }}`` took 52 s before failing, at every retry.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import datetime, timedelta
from decimal import Decimal
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import URL

from followupd.errors import EX_FOLLOWUPS_FAILED, FollowupdError
from followupd.store.db import Store
from followupd.store.outbox import by_hand
from followupd.templates.loader import SHIPPED, TemplateProblem, Templates
from followupd.templates.sandbox import MAX_RENDERED_CHARS
from tests.conftest import MINIMAL_CONFIG, ONE_EMAIL_PER_INVOICE, RunCli
from tests.daemon import DISABLED, daytime_setting, environment, followupd, get, wait_for
from tests.rulekit import BOB, CLAIRE, PARIS
from tests.rulekit import outbox as recorded
from tests.smtpserver import free_port, smtp_server

SHIPPED_NUDGE = (SHIPPED / "fr" / "invoice_due" / "default.j2").read_text(encoding="utf-8")
# Three unpaid invoices of one mission, due on Friday 20 November 2026: each
# one's first nudge is due on Monday 23 November at 09:00, in French.
THREE_INVOICES = """\
[[clients]]
key = "acme"
name = "ACME SA"
language = "fr"
[[contacts]]
key = "jdupont"
client = "acme"
name = "Jeanne Dupont"
email = "jeanne.dupont@acme.example"
[[missions]]
key = "acme-audit"
client = "acme"
title = "Audit du SI"
contact = "jdupont"
start = 2026-09-01
contract_signed = 2026-08-25
""" + "".join(
    f'[[invoices]]\nnumber = "F-{n}"\nmission = "acme-audit"\namount = {n}000\n'
    f"issued = 2026-10-21\ndue = 2026-11-20\n"
    for n in (1, 2, 3)
)
NUDGES = [f"invoice_due:F-{n}:nudge-1" for n in (1, 2, 3)]


def nudge_failing_for_f2(failure: str) -> str:
    """The shipped French nudge, with `failure` on its third line for invoice F-2 only."""
    lines = SHIPPED_NUDGE.splitlines(keepends=True)
    lines.insert(2, f'{{% if invoice.number == "F-2" %}}{failure}{{% endif %}}\n')
    return "".join(lines)


def with_templates(home: Path, nudge: str) -> Path:
    """The config, with a templates directory whose French nudge is `nudge`."""
    directory = home / "mine"
    (directory / "fr" / "invoice_due").mkdir(parents=True)
    (directory / "fr" / "invoice_due" / "default.j2").write_text(nudge, encoding="utf-8")
    config = home / "followupd.toml"
    config.write_text(
        MINIMAL_CONFIG + '[templates]\ndirectory = "mine"\n' + ONE_EMAIL_PER_INVOICE,
        encoding="utf-8",
    )
    (home / "data.toml").write_text(THREE_INVOICES, encoding="utf-8")
    return directory / "fr" / "invoice_due" / "default.j2"


def ticked(cli: RunCli, now: str) -> tuple[int, dict[str, dict[str, Any]]]:
    result = cli("tick", "--now", now, "--json")
    assert result.out, result
    return result.code, {item["key"]: item for item in json.loads(result.out)["followups"]}


def row_of(database: URL, key: str) -> Any:
    store = Store.open(database)
    try:
        return recorded(store)[key]
    finally:
        store.close()


def maildir_subjects(home: Path) -> list[str]:
    new = home / ".local" / "state" / "followupd" / "Maildir" / "new"
    messages = [
        message_from_bytes(path.read_bytes(), policy=policy.default) for path in new.iterdir()
    ]
    return sorted(str(message["Subject"]) for message in messages)


def test_a_template_failing_for_one_followup_fails_it_alone(
    cli: RunCli, home: Path, database_url: URL
) -> None:
    template = with_templates(home, nudge_failing_for_f2("{{ mission.nonexistent.attr }}"))
    assert cli("init").code == 0
    assert cli("import", home / "data.toml").code == 0

    planned = cli("plan", "--from", "2026-11-23", "--to", "2026-11-24", "--json")
    assert planned.code == 0, planned
    subjects = {item["key"]: item["subject"] for item in json.loads(planned.out)["followups"]}
    assert subjects[NUDGES[1]].startswith(f"(not sent: template {template}, line 3: ")
    assert subjects[NUDGES[0]] == "Facture F-1 : échéance du 20 novembre 2026"

    code, followups = ticked(cli, "2026-11-23T10:00")
    assert code == EX_FOLLOWUPS_FAILED, "a failing template is a failed follow-up, said by 3"
    assert followups[NUDGES[0]]["state"] == followups[NUDGES[2]]["state"] == "sent"
    failed = followups[NUDGES[1]]
    assert failed["state"] == "failed"
    assert failed["reason"].startswith(f"template {template}, line 3: no field 'nonexistent'")
    assert maildir_subjects(home) == [
        "Facture F-1 : échéance du 20 novembre 2026",
        "Facture F-3 : échéance du 20 novembre 2026",
    ]
    shown = cli("outbox", "show", NUDGES[1])
    assert "failed: template" in shown.out
    assert "line 3" in shown.out

    # not transient: a later pass neither retries nor sends it
    code, again = ticked(cli, "2026-11-24T10:00")
    assert code == 0, again
    assert NUDGES[1] not in again
    row = row_of(database_url, NUDGES[1])
    assert (row.state, row.attempts, row.body) == ("failed", 0, "")
    assert len(maildir_subjects(home)) == 2

    # the template fixed, a retry records it again, rendered, and it goes out
    template.write_text(SHIPPED_NUDGE, encoding="utf-8")
    store = Store.open(database_url)
    try:
        late = datetime(2026, 12, 31, tzinfo=PARIS)  # past its grace: it would not come back
        refused = pytest.raises(FollowupdError, match=r"never rendered, and its grace ended")
        with refused, store.session() as session:
            by_hand.retry(session, NUDGES[1], late, PARIS)
        with store.session() as session:
            _, said = by_hand.retry(
                session, NUDGES[1], datetime(2026, 11, 24, 11, tzinfo=PARIS), PARIS
            )
        assert said.startswith("recorded again by the next pass")
    finally:
        store.close()
    code, retried = ticked(cli, "2026-11-24T11:00")
    assert retried[NUDGES[1]]["state"] == "sent", retried
    assert len(maildir_subjects(home)) == 3


def test_a_runaway_template_fails_its_followup_at_once(cli: RunCli, home: Path) -> None:
    template = with_templates(home, nudge_failing_for_f2("{{ 'x' * 100000000 }}"))
    assert cli("init").code == 0
    assert cli("import", home / "data.toml").code == 0
    dry = cli("tick", "--now", "2026-11-23T10:00", "--dry-run")
    assert "failed: template" in " ".join(dry.out.split()), dry
    code, followups = ticked(cli, "2026-11-23T10:00")
    assert code != 1
    failed = followups[NUDGES[1]]
    assert failed["state"] == "failed"
    assert failed["reason"] == (
        f"template {template}, line 3: this multiplication would make 100,000,000 characters, "
        f"over the {MAX_RENDERED_CHARS:,} a message may hold"
    )
    assert followups[NUDGES[0]]["state"] == followups[NUDGES[2]]["state"] == "sent"


@pytest.mark.parametrize(
    "runaway",
    [
        "{{ 'x' * 100000000 }}",
        "{{ [0] * 100000000 }}",
        "{{ 7 ** 100000000 }}",
        "{{ '%100000000s' % 'x' }}",
        "{{ '%-*s' % (100000000, 'x') }}",
        "{{ '{:>100000000}'.format('x') }}",
        "{{ 'x'|center(100000000) }}",
        "{{ 'x'.ljust(100000000) }}",
        "{{ 'a\\nb'|indent(100000000) }}",
        "{{ ('x' * 200000)|replace('x', 'yy') }}",
        "{{ range(100000)|join('y' * 100) }}",
        "{{ [1]|batch(100000000, 'x')|list }}",
        "{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}",
        "{% set s %}{% for i in range(100000) %}{{ 'x' * 100000 }}{% endfor %}{% endset %}",
        "{% set n = namespace(s='x') %}{% for i in range(40) %}{% set n.s = n.s ~ n.s %}"
        "{% endfor %}",
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    ],
)
def test_what_would_run_away_fails_with_the_line(tmp_path: Path, runaway: str) -> None:
    user = tmp_path / "templates"
    path = user / "en" / "invoice_due" / "nudge-1.j2"
    path.parent.mkdir(parents=True)
    path.write_text("{% block text %}\nDear client,\n" + runaway + "\n{% endblock %}", "utf-8")
    with pytest.raises(TemplateProblem) as raised:
        Templates(user).render("en", "invoice_due", "nudge-1", "text", {})
    assert (raised.value.file, raised.value.line) == (str(path), 3)
    assert any(word in raised.value.detail for word in ("characters", "bits", "items"))


def test_what_templates_usually_do_still_works(tmp_path: Path) -> None:
    user = tmp_path / "templates"
    path = user / "en" / "invoice_due" / "nudge-1.j2"
    path.parent.mkdir(parents=True)
    path.write_text(
        "{% block text %}{{ '-' * 20 }} {{ '%05.1f' % 3.14159 }} {{ '{:>6}'.format('ab') }} "
        "{{ items|join(', ') }} {{ 2 ** 10 }} {{ 'a' ~ 'b' }} {{ 'x'|center(5) }}|"
        "{% for i in range(3) %}{{ i }}{% endfor %}{% endblock %}",
        "utf-8",
    )
    text = Templates(user).render("en", "invoice_due", "nudge-1", "text", {"items": ["a", "b"]})
    assert text == "-------------------- 003.1     ab a, b 1024 ab   x  |012"


def test_the_helpers_called_without_the_sandboxs_checks_still_count_what_they_make(
    tmp_path: Path,
) -> None:
    """`money`, `day`… are followupd's own: called directly, in a loop or a set block, and
    what they return is counted against the caps like any value made."""
    user = tmp_path / "templates"
    path = user / "en" / "invoice_due" / "nudge-1.j2"
    path.parent.mkdir(parents=True)
    path.write_text(
        "{% block text %}{% set first %}{{ money(amounts[0], 'EUR') }}{% endset %}"
        "{% for each in amounts %}{{ money(each, 'EUR') }}; {% endfor %}{{ first }}"
        " {{ de(name) }}{% endblock %}{% block html %}\n"
        "{% for i in range(60000) %}{% set it = de(long) %}{% endfor %}{% endblock %}",
        "utf-8",
    )
    values = {"amounts": [Decimal("12.5"), Decimal(3)], "name": "Acme", "long": "A" * 400}
    text = Templates(user).render("en", "invoice_due", "nudge-1", "text", values)
    assert text == "€12.50; €3.00; €12.50 d'Acme"
    with pytest.raises(TemplateProblem) as raised:
        Templates(user).render("en", "invoice_due", "nudge-1", "html", values)
    assert (raised.value.file, raised.value.line) == (str(path), 2)
    assert "the template made over" in raised.value.detail


def test_an_error_in_an_included_file_names_that_file(tmp_path: Path) -> None:
    user = tmp_path / "templates"
    signature = user / "signature.j2"
    signature.parent.mkdir(parents=True)
    signature.write_text("Regards,\n\n{{ 1 / zero }}\n", "utf-8")
    child = user / "en" / "invoice_due" / "nudge-1.j2"
    child.parent.mkdir(parents=True)
    child.write_text(
        '{% block text %}\nHello,\n{% include "signature.j2" %}{% endblock %}', "utf-8"
    )
    with pytest.raises(TemplateProblem) as raised:
        Templates(user).render("en", "invoice_due", "nudge-1", "text", {"zero": 0})
    assert str(raised.value) == (
        f"template {signature}, line 3: ZeroDivisionError: division by zero"
    )
    broken = user / "en" / "invoice_due" / "nudge-2.j2"
    broken.write_text("{% block subject %}\n{% if %}{% endblock %}", "utf-8")
    with pytest.raises(TemplateProblem, match=rf"^template {broken}, line 2: Expected an"):
        Templates(user).render("en", "invoice_due", "nudge-2", "subject", {})


# -- check --offline ----------------------------------------------------------------------


def checked(cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("HOME", str(tmp_path))
    config = tmp_path / "followupd.toml"
    config.write_text(MINIMAL_CONFIG + '[templates]\ndirectory = "mine"\n', encoding="utf-8")
    return cli("check", "--offline", "--config", config)


def test_check_offline_lists_each_template_error_with_file_and_line(
    cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = tmp_path / "mine"
    nudge = mine / "fr" / "invoice_due" / "default.j2"
    nudge.parent.mkdir(parents=True)
    broken = SHIPPED_NUDGE.replace(
        '{% elif step == "nudge-2" %}\n',
        '{% elif step == "nudge-2" %}\n{{ mission.nonexistent.attr }}\n',
    ).replace("{% else %}\nLa facture", "{% else %}\n{{ 'x' * 100000000 }}\nLa facture")
    nudge.write_text(broken, encoding="utf-8")
    greetings = mine / "en" / "new_year_greetings" / "default.j2"
    greetings.parent.mkdir(parents=True)
    greetings.write_text("{% block subject %}Happy {{ 1 / 0 }}{% endblock %}", "utf-8")
    layout = mine / "layout.j2"
    layout.write_text("{% block text %}\n\n{% if %}{% endblock %}", "utf-8")

    result = checked(cli, tmp_path, monkeypatch)
    assert result.code == 78, result
    shown = " ".join(result.out.split())  # as the table wraps it
    lines = broken.splitlines()
    attribute = lines.index("{{ mission.nonexistent.attr }}") + 1
    runaway = lines.index("{{ 'x' * 100000000 }}") + 1
    for expected in (
        f"template {nudge} FAILED line {attribute}: no field 'nonexistent' here; there are: id, "
        "key, client_id, title,",
        "(rendering invoice_due nudge-2 in fr)",
        f"template {nudge} FAILED line {runaway}: this multiplication would make 100,000,000 "
        f"characters, over the {MAX_RENDERED_CHARS:,} a message may hold (rendering "
        "invoice_due nudge-3 in fr)",
        f"template {greetings} FAILED line 1: ZeroDivisionError: division by zero (rendering "
        "new_year_greetings greetings in en)",
        f"template {layout} FAILED line 3: Expected an expression, got 'end of statement block'",
    ):
        assert expected in shown, result
    assert shown.count(" FAILED ") == 4, result


def test_check_offline_passes_with_the_shipped_templates(
    cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(
        SHIPPED, tmp_path / "mine", ignore=shutil.ignore_patterns("*.py", "__pycache__")
    )
    result = checked(cli, tmp_path, monkeypatch)
    assert result.code == 0, result
    count = len(list((tmp_path / "mine").rglob("*.j2")))
    assert (
        f"templates ok {count} in {tmp_path / 'mine'}, each renders with sample data"
        in " ".join(result.out.split())
    )


# -- the daemon -----------------------------------------------------------------------------


@pytest.mark.slow
def test_the_daemon_stays_healthy_and_sends_the_others(home: Path, database_url: URL) -> None:
    setting = daytime_setting()
    port = free_port()
    disabled = "".join(f"[rules.{name}]\nenabled = false\n" for name in DISABLED)
    with smtp_server() as (recorder, smtp_port):
        template = with_templates(home, nudge_failing_for_f2("{{ mission.nonexistent.attr }}"))
        (home / "followupd.toml").write_text(
            f"""\
[owner]
name = "Claire Martin"
email = "claire@cabinet.example"
timezone = "{setting.zone.key}"
country = "{setting.country}"
[smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
[feed]
listen = "127.0.0.1:{port}"
[templates]
directory = "mine"
[business]
send_window = "00:00-23:59"
working_days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
{disabled}""",
            "utf-8",
        )
        due = setting.today - timedelta(days=2)  # each first nudge was due yesterday
        data = THREE_INVOICES.replace("due = 2026-11-20", f"due = {due}")
        data = data.replace('language = "fr"', f'language = "fr"\ncountry = "{setting.country}"')
        (home / "data.toml").write_text(data, "utf-8")
        assert followupd(home, "init").returncode == 0
        assert followupd(home, "import", str(home / "data.toml")).returncode == 0

        daemon = subprocess.Popen(
            [sys.executable, "-m", "followupd", "--config", str(home / "followupd.toml"), "run"],
            env=environment(home), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:

            def sent() -> list[str]:
                return sorted(str(message["Subject"]) for message in list(recorder.messages))

            def evaluated_and_healthy() -> bool:
                status, body, _ = get(f"http://127.0.0.1:{port}/healthz")
                return status == 200 and "evaluate" in body.decode()

            wait_for(lambda: len(sent()) == 2, timeout=30)
            wait_for(evaluated_and_healthy, timeout=20)
            assert all("F-2" not in subject for subject in sent()), sent()
            row = row_of(database_url, NUDGES[1])
            assert row.state == "failed"
            assert row.reason.startswith(f"template {template}, line 3: ")
        finally:
            daemon.terminate()
            output, _ = daemon.communicate(timeout=30)
        assert daemon.returncode == 0, output
        assert "Traceback" not in output
        assert f"{NUDGES[1]} failed: template {template}, line 3" in output


def test_check_offline_renders_each_owners_templates(
    cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "bob-templates" / "en" / "contract_missing" / "default.j2"
    broken.parent.mkdir(parents=True)
    broken.write_text("{% block subject %}Contract for {{ mission.titel }}{% endblock %}", "utf-8")
    monkeypatch.setenv("HOME", str(tmp_path))
    config = tmp_path / "followupd.toml"
    config.write_text(CLAIRE + BOB + 'templates = "bob-templates"\n', encoding="utf-8")
    result = cli("check", "--offline", "--config", config)
    assert result.code == 78, result
    shown = " ".join(result.out.split())
    assert f"template {broken} FAILED line 1: no field 'titel' here; there are: " in shown
    assert "(rendering contract_missing reminder in en)" in shown


def test_check_offline_renders_the_digest(
    cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = tmp_path / "mine" / "en" / "digest" / "default.j2"
    digest.parent.mkdir(parents=True)
    shipped = (SHIPPED / "en" / "digest" / "default.j2").read_text(encoding="utf-8")
    mistake = "<li><strong>{{ line.contact_nmae }}</strong>"
    broken = shipped.replace("<li><strong>", mistake + "\n<li><strong>", 1)
    assert broken != shipped
    digest.write_text(broken, encoding="utf-8")
    result = checked(cli, tmp_path, monkeypatch)
    assert result.code == 78, result
    shown = " ".join(result.out.split())
    line = broken.splitlines().index(mistake) + 1
    assert f"template {digest} FAILED line {line}: " in shown
    assert "has no attribute 'contact_nmae' (rendering the digest in en)" in shown
    french = tmp_path / "mine" / "fr" / "digest" / "default.j2"
    french.parent.mkdir(parents=True)
    french.write_text("{% block subject %}{{ count }} rappels{% endblock %}", encoding="utf-8")
    assert f"template {french}" not in " ".join(checked(cli, tmp_path, monkeypatch).out.split())


def test_check_offline_renders_the_tasks_a_mailbox_makes(
    cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`client_replied` and `email_bounced` have samples too, though the demo reads no mail."""
    mine = tmp_path / "mine"
    replied = mine / "fr" / "client_replied" / "default.j2"
    replied.parent.mkdir(parents=True)
    replied.write_text("{% block subject %}{{ reply.sendr }}{% endblock %}", "utf-8")
    bounced = mine / "en" / "email_bounced" / "default.j2"
    bounced.parent.mkdir(parents=True)
    bounced.write_text("{% block subject %}{{ bounce.address.nope }}{% endblock %}", "utf-8")
    result = checked(cli, tmp_path, monkeypatch)
    assert result.code == 78, result
    shown = " ".join(result.out.split())
    assert f"template {replied} FAILED line 1: " in shown
    assert "(rendering client_replied read-and-answer in fr)" in shown
    assert f"template {bounced} FAILED line 1: " in shown
    assert "(rendering email_bounced fix-address in en)" in shown
