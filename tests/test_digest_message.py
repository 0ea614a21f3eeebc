"""The owner's daily digest: its order, its languages, its links, its escaping, its template."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape

from followupd.channels.email.digest import DigestLine, LastSaid, arrange, digest_message
from followupd.channels.email.message import build_message, text_to_html
from followupd.config.owners import Owner
from followupd.templates.loader import TemplateProblem, Templates
from tests.rulekit import PARIS

MONDAY = date(2026, 12, 7)
CLAIRE = Owner(name="Claire Martin", email="claire@cabinet.example", language="fr")
AUDIT = {"mission_key": "acme-audit", "mission_title": "Audit du SI", "client_name": "ACME SA"}
BETA = {"mission_key": "beta-site", "mission_title": "Refonte du site", "client_name": "Beta"}


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=PARIS)


def line(key: str, summary: str, due_at: datetime, **fields: Any) -> DigestLine:
    rule, step = key.split(":")[0], key.split(":")[-1]
    return DigestLine(key, rule, step, step == "call", summary, due_at, **fields)


# a call late since Friday, a call of today, reminders of two missions, one of none;
# summaries as the shipped templates write them: "what to do — what it is about"
LATE_CALL = line(
    "escalate_by_phone:I-1:call",
    "Appeler Jeanne Dupont — Serveur de recette indisponible",
    at(4, 9),
    contact_name="Jeanne Dupont",
    contact_phone="+33 6 12 34 56 78",
    last_said=LastSaid("call", at(2, 15), "Correctif promis pour vendredi"),
    **AUDIT,
)
CALL = line(
    "deposit_due:beta-site:call",
    "Appeler Paul Martin — acompte de 3 000,00 € non réglé",
    at(7, 9),
    contact_name="Paul Martin",
    contact_phone="06.98.76.54.32",
    **BETA,
)
HEADS_UP = line(
    "invoice_due:F-1:heads-up",
    "Prévenir Jeanne Dupont — facture F-1 à échéance le 10 décembre 2026",
    at(7, 9),
    **AUDIT,
)
STATUS = line(
    "status_update_due:acme-audit:default",
    "Envoyer le point d'avancement à Jeanne Dupont — Audit du SI",
    at(7, 8),
    **AUDIT,
)
CONTRACT = line(
    "contract_missing:beta-site:reminder",
    "Faire signer le contrat à Paul Martin — Refonte du site",
    at(7, 9),
    **BETA,
)
LOOSE = line("new_year_greetings:jdupont:default", "Vœux à Jeanne Dupont", at(7, 9))
EVERY = [LOOSE, CONTRACT, HEADS_UP, CALL, STATUS, LATE_CALL]


def render(lines: list[DigestLine], owner: Owner = CLAIRE, *dirs: Path) -> tuple[str, str, str]:
    return digest_message(Templates(*dirs), owner, MONDAY, lines)


def positions(text: str, lines: list[DigestLine]) -> list[int]:
    html = text.lstrip().startswith("<!doctype html>")
    found = [text.find(escape(item.brief) if html else item.brief) for item in lines]
    assert -1 not in found, text
    return found


def test_calls_first_then_by_mission_then_the_rest() -> None:
    order = arrange(EVERY, PARIS)
    assert [item.key for item in order.calls] == [LATE_CALL.key, CALL.key], "by due time"
    assert [mission.title for mission in order.missions] == ["Audit du SI", "Refonte du site"]
    assert [item.key for item in order.missions[0].lines] == [STATUS.key, HEADS_UP.key]
    assert order.missions[0].client_name == "ACME SA"
    assert order.others == (LOOSE,)
    assert [item.key for item in order.lines] == [
        item.key for item in (LATE_CALL, CALL, STATUS, HEADS_UP, CONTRACT, LOOSE)
    ]
    for language in ("fr", "en"):
        _, text, html = render(EVERY, CLAIRE.model_copy(update={"language": language}))
        for body in (text, html):
            found = positions(body, [LATE_CALL, CALL, STATUS, HEADS_UP, CONTRACT, LOOSE])
            assert found == sorted(found), body
            assert body.find("Audit du SI") < found[2], "under its mission"


def test_a_mission_is_grouped_by_key_and_titled_even_without_a_title() -> None:
    untitled = replace(CONTRACT, mission_title=None, key="contract_missing:zz:reminder")
    order = arrange([untitled, replace(HEADS_UP, mission_key="beta-site")], PARIS)
    (mission,) = order.missions
    assert (mission.key, mission.title) == ("beta-site", "Audit du SI")
    alone = arrange([untitled], PARIS).missions[0]
    assert alone.title == "beta-site", "the key when no line has a title"


@pytest.mark.parametrize(
    ("language", "count", "subject"),
    [
        ("fr", 1, "followupd : 1 rappel pour le lundi 7 décembre"),
        ("fr", 3, "followupd : 3 rappels pour le lundi 7 décembre"),
        ("en", 1, "followupd: 1 reminder for Monday, December 7"),
        ("en", 3, "followupd: 3 reminders for Monday, December 7"),
    ],
)
def test_the_subject_counts_in_the_owners_language(language: str, count: int, subject: str) -> None:
    owner = CLAIRE.model_copy(update={"language": language})
    title, text, html = render(EVERY[:count], owner)
    assert title == subject
    assert subject.split(" ", 2)[-1] in text and subject.split(" ", 2)[-1] in html


def test_a_first_of_the_month_in_french() -> None:
    title, _, _ = digest_message(Templates(), CLAIRE, date(2026, 12, 1), [LOOSE])
    assert title == "followupd : 1 rappel pour le mardi 1er décembre"


def test_a_call_says_whom_the_number_why_and_what_was_last_said() -> None:
    _, text, html = render(EVERY)
    assert "Jeanne Dupont (ACME SA) : tel:+33612345678" in text
    assert "Paul Martin (Beta) : tel:0698765432" in text
    assert '<a href="tel:+33612345678">+33 6 12 34 56 78</a>' in html
    assert "Dernier échange : appel le 2 décembre 2026 : « Correctif promis pour vendredi »" in text
    assert "Serveur de recette indisponible. À faire depuis le vendredi 4 décembre." in text
    assert "À faire depuis" not in text.split("Paul Martin (Beta)")[1], "due today"
    _, english, _ = render(EVERY, CLAIRE.model_copy(update={"language": "en"}))
    assert 'Last exchange: call on December 2, 2026: "Correctif promis pour vendredi"' in english
    assert "Serveur de recette indisponible. Due since Friday, December 4." in english


def test_a_line_leaves_out_what_its_heading_says() -> None:
    for language in ("fr", "en"):
        _, text, html = render(EVERY, CLAIRE.model_copy(update={"language": language}))
        for body in (text, html):
            assert "Jeanne Dupont — Audit du SI" not in body, "the mission is the heading"
            assert "Paul Martin — Refonte du site" not in body
            assert "Appeler Jeanne Dupont" not in body, "the person to call is the heading"
            assert body.count("Audit du SI") == 2, "its heading and the call's mission line"
        assert "\n- Envoyer le point d'avancement à Jeanne Dupont\n" in text
        assert "\n- Faire signer le contrat à Paul Martin\n" in text
        assert "\n  acompte de 3 000,00 € non réglé\n" in text
        assert f"\n- {HEADS_UP.summary}\n" in text, "about an invoice, not the mission: whole"


def test_a_summary_of_another_shape_is_shown_whole() -> None:
    assert LOOSE.brief == LOOSE.summary, "no separator"
    assert replace(STATUS, mission_title=None).brief == STATUS.summary, "no mission heading"
    stranger = replace(CALL, summary="Appeler le notaire — acompte")
    assert stranger.brief == stranger.summary, "the action names someone else"
    assert replace(CALL, contact_name=None, client_name=None).brief == CALL.summary
    assert replace(STATUS, summary=" — Audit du SI").brief == " — Audit du SI", "no action"


def test_a_late_line_ending_with_a_bracket_gets_no_second_one() -> None:
    late = replace(CONTRACT, summary="Relancer Beta (Paul Martin)", due_at=at(4, 9))
    _, text, html = render([late])
    assert text.endswith("\n- Relancer Beta (Paul Martin). À faire depuis le vendredi 4 décembre.")
    assert ") (" not in text and ") (" not in html


def test_a_call_without_a_number_says_so() -> None:
    _, text, html = render([replace(CALL, contact_phone=None)])
    assert "Paul Martin (Beta) : aucun numéro enregistré" in text
    assert "tel:" not in text and "tel:" not in html


def test_times_are_the_owners() -> None:
    # 23:30 UTC on Sunday is half past midnight on Monday in Paris: due today, not late
    sunday_night = replace(LOOSE, due_at=datetime(2026, 12, 6, 23, 30, tzinfo=UTC))
    _, text, _ = render([sunday_night])
    assert "À faire depuis" not in text
    (shown,) = arrange([sunday_night], PARIS).others
    assert shown.due_on == MONDAY and shown.due_at.utcoffset() == timedelta(hours=1)
    with pytest.raises(ValueError, match="time zone"):
        render([replace(LOOSE, due_at=datetime(2026, 12, 7, 9))])


def test_names_are_escaped_in_html_only() -> None:
    name = "<b>Ann & Bob</b>"
    hostile = replace(CALL, contact_name=name, mission_title='"Site" <script>', summary="a & b")
    _, text, html = render(
        [
            hostile,
            replace(HEADS_UP, mission_key="beta-site", mission_title="Refonte", client_name=name),
        ]
    )
    assert name in text
    assert "&lt;b&gt;Ann &amp; Bob&lt;/b&gt;" in html
    assert "<b>Ann" not in html and "<script>" not in html
    assert "&lt;script&gt;" in html and "a &amp; b" in html
    assert html.lstrip().startswith("<!doctype html>")


def test_the_digest_as_an_email() -> None:
    subject, text, html = render(EVERY)
    message = build_message(
        key="digest:owner:2026-12-07",
        sender="followupd <followupd@cabinet.example>",
        recipient=CLAIRE.email,
        reply_to=CLAIRE.email,
        subject=subject,
        body=text,
        html=html,
        sent_at=at(7, 9),
    )
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert parsed["Subject"] == subject
    page = parsed.get_body(("html",))
    assert page is not None and "<h3>À appeler</h3>" in page.get_content()


def test_a_users_digest_template_is_used(tmp_path: Path) -> None:
    mine = tmp_path / "mine" / "en" / "digest" / "default.j2"
    mine.parent.mkdir(parents=True)
    mine.write_text(
        "{% block subject %}{{ count }} for {{ owner.name }}{% endblock %}\n"
        "{% block text %}{% for line in lines %}{{ line.summary }}|{% endfor %}{% endblock %}\n",
        encoding="utf-8",
    )
    bob = CLAIRE.model_copy(update={"language": "en", "name": "Bob Durand"})
    subject, text, html = render(EVERY, bob, tmp_path / "mine")
    assert subject == f"{len(EVERY)} for Bob Durand"
    order = arrange(EVERY, PARIS).lines
    assert text == "".join(f"{item.summary}|" for item in order)
    assert html == text_to_html(text), "no html block: made from the text"
    french, _, _ = render(EVERY, CLAIRE, tmp_path / "mine")
    assert french.startswith("followupd : "), "the shipped French one still"


def test_no_digest_without_reminders() -> None:
    with pytest.raises(ValueError, match="at least one reminder"):
        render([])


def test_a_failing_digest_template_names_its_file_and_line(tmp_path: Path) -> None:
    mine = tmp_path / "fr" / "digest" / "default.j2"
    mine.parent.mkdir(parents=True)
    source = (
        "{% block subject %}Rappels{% endblock %}\n{% block text %}\n"
        "{% for line in calls %}\n{{ line.summary }}\n{{ line.contact.name }}\n{% endfor %}\n"
        "{% endblock %}\n"
    )
    mine.write_text(source, encoding="utf-8")
    with pytest.raises(TemplateProblem) as caught:
        render(EVERY, CLAIRE, tmp_path)
    wrong = source.splitlines().index("{{ line.contact.name }}") + 1
    assert (caught.value.file, caught.value.line) == (str(mine), wrong)
    assert "contact" in caught.value.detail
    mine.write_text("{% block subject %}{% if %}{% endblock %}", encoding="utf-8")
    with pytest.raises(TemplateProblem) as syntax:
        render(EVERY, CLAIRE, tmp_path)
    assert (syntax.value.file, syntax.value.line) == (str(mine), 1)
