"""Templates: every message renders in both languages, localised, sandboxed, overridable."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from jinja2 import nodes

from followupd.config.load import parse_settings
from followupd.engine.evaluation import plan
from followupd.errors import ConfigError
from followupd.rules.registry import enabled_rules
from followupd.sources.files.importer import import_files
from followupd.store.db import Store
from followupd.templates.loader import SHIPPED, LazySubject, TemplateProblem, Templates, helpers
from tests.conftest import MINIMAL_CONFIG

DEMO = Path(__file__).parent.parent / "config" / "demo.toml"
PARIS = ZoneInfo("Europe/Paris")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.slow
def test_every_followup_of_the_demo_year_renders_in_its_language(
    store: Store, tmp_path: Path
) -> None:
    for language in ("fr", "en"):
        settings = parse_settings(
            MINIMAL_CONFIG + f'language = "{language}"\n',
            tmp_path / "followupd.toml",
            {"HOME": str(tmp_path)},
        )
        if language == "fr":
            import_files(store, [DEMO], PARIS)
        with store.session() as session:
            intents = plan(
                session,
                settings,
                enabled_rules(settings.rules),
                datetime(2026, 6, 1, tzinfo=UTC),
                datetime(2027, 12, 31, tzinfo=UTC),
            )
        rules = {intent.rule for intent in intents}
        assert len(rules) >= 8, rules
        for intent in intents:
            assert isinstance(intent.subject, LazySubject)
            subject, text = str(intent.subject), intent.subject.text()
            assert subject, intent.key
            assert "\n" not in subject
            assert text, intent.key
            if intent.audience == "owner":
                assert intent.language == language, intent.key
        languages = {intent.language for intent in intents if intent.audience == "client"}
        assert languages == {"fr", "en"}


def test_dates_and_amounts_are_localised(tmp_path: Path) -> None:
    user = tmp_path / "templates"
    for language in ("fr", "en"):
        write(
            user / language / "invoice_due" / "nudge-1.j2",
            "{% block subject %}{{ day(when) }} | {{ money(amount, 'EUR') }}{% endblock %}",
        )
    templates = Templates(user)
    values = {"when": date(2027, 1, 15), "amount": Decimal("12000")}
    french = str(templates.subject("fr", "invoice_due", "nudge-1", values))
    assert french == "15 janvier 2027 | 12\u202f000,00\xa0€"
    english = str(templates.subject("en", "invoice_due", "nudge-1", values))
    assert english == "January 15, 2027 | €12,000.00"


def test_a_user_directory_overrides_one_template_and_keeps_the_others(tmp_path: Path) -> None:
    user = tmp_path / "templates"
    write(user / "fr" / "invoice_due" / "nudge-1.j2",
          "{% block subject %}Petit rappel : {{ invoice.number }}{% endblock %}")  # fmt: skip
    templates = Templates(user)
    values = {"invoice": {"number": "F-1", "due": date(2026, 11, 30)}}
    assert templates.subject("fr", "invoice_due", "nudge-1", values) == "Petit rappel : F-1"
    shipped = templates.subject("fr", "invoice_due", "nudge-2", values)
    assert shipped == "Facture F-1 : échéance du 30 novembre 2026"


def test_templates_are_sandboxed(tmp_path: Path) -> None:
    user = tmp_path / "templates"
    write(user / "en" / "invoice_due" / "nudge-1.j2",
          "{% block subject %}{{ owner.__class__.__mro__ }}{% endblock %}")  # fmt: skip
    subject = Templates(user).subject("en", "invoice_due", "nudge-1", {"owner": object()})
    with pytest.raises(TemplateProblem, match=r"nudge-1\.j2"):
        str(subject)


def test_only_the_shipped_templates_run_outside_the_sandbox(tmp_path: Path) -> None:
    """The shipped templates are followupd's own code, run without the sandbox's checks; a
    user's template, and what it includes, shipped or not, runs in the sandbox."""
    user = tmp_path / "templates"
    write(user / "en" / "invoice_due" / "nudge-1.j2",
          "{% block subject %}{{ owner.__class__.__mro__ }}{% endblock %}")  # fmt: skip
    including = '{% block subject %}{% include "en/new_year_greetings/default.j2" %}{% endblock %}'
    write(user / "en" / "invoice_due" / "nudge-3.j2", including)
    templates = Templates(user)
    assert templates.template("en", "invoice_due", "nudge-1").environment.sandboxed
    assert templates.template("en", "invoice_due", "nudge-3").environment.sandboxed
    assert not templates.template("en", "new_year_greetings", "x").environment.sandboxed
    assert not Templates().template("en", "invoice_due", "nudge-1").environment.sandboxed
    with pytest.raises(TemplateProblem, match="unsafe"):
        str(templates.subject("en", "invoice_due", "nudge-1", {"owner": object()}))
    values = {"year": 2027, "contact": {"name": "Jo"}, "owner": {"name": "Claire"}}
    shipped = templates.subject("en", "new_year_greetings", "default", values)
    included = str(templates.subject("en", "invoice_due", "nudge-3", values))
    assert included.startswith(str(shipped)), "the shipped template, included, in the sandbox"
    assert templates.env.get_template("en/new_year_greetings/default.j2").environment.sandboxed


def test_a_user_template_extending_a_shipped_one_keeps_the_blocks_it_does_not_override(
    tmp_path: Path,
) -> None:
    """A user's template that extends a shipped one to change its subject keeps the shipped
    body (it had none: the email would have gone out empty) and can call super()."""
    user = tmp_path / "templates"
    write(user / "en" / "new_year_greetings" / "first-year.j2",
          '{% extends "en/new_year_greetings/default.j2" %}'
          "{% block subject %}[ACME] {{ super() }}{% endblock %}")  # fmt: skip
    values = {"year": 2027, "contact": {"name": "Jo"}, "owner": {"name": "Claire"}}
    shipped = Templates().subject("en", "new_year_greetings", "first-year", values)
    extended = Templates(user).subject("en", "new_year_greetings", "first-year", values)
    assert extended.text(), "the shipped body, inherited"
    assert extended.text() == shipped.text()
    assert str(extended) == f"[ACME] {shipped}"
    assert Templates(user).template("en", "new_year_greetings", "first-year").environment.sandboxed


def test_no_shipped_template_loads_another() -> None:
    """Outside the sandbox, a shipped template loads only shipped ones: were one to extend,
    include or import another, a user's file of that name would not be used in its place
    (as the others are), and it would have to be run in the sandbox instead."""
    environment = Templates().shipped
    loads = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)
    for path in SHIPPED.rglob("*.j2"):
        tree = environment.parse(path.read_text(encoding="utf-8"))
        assert not list(tree.find_all(loads)), path


def test_the_sandbox_decides_an_attribute_per_type_not_per_name(tmp_path: Path) -> None:
    """Its decisions are kept by type and name: a code object's field stays out of reach
    after a row's field of the same name was read, every time, in either order."""
    user = tmp_path / "templates"
    write(user / "en" / "invoice_due" / "nudge-1.j2",
          "{% block subject %}{{ x.co_argcount }}{% endblock %}")  # fmt: skip
    templates = Templates(user)
    row = SimpleNamespace(co_argcount=3)
    code = (lambda a, b: a).__code__
    for _ in range(2):
        assert str(templates.subject("en", "invoice_due", "nudge-1", {"x": row})) == "3"
        with pytest.raises(TemplateProblem, match="unsafe"):
            str(templates.subject("en", "invoice_due", "nudge-1", {"x": code}))
    write(user / "en" / "invoice_due" / "nudge-2.j2",
          "{% block subject %}{{ x.name }}{{ x._secret }}{% endblock %}")  # fmt: skip
    write(user / "en" / "invoice_due" / "nudge-3.j2",
          "{% block subject %}{{ x.name }}{{ s.format(x) }}{% endblock %}")  # fmt: skip
    holder = SimpleNamespace(name="Acme", _secret="hidden")
    for _ in range(2):  # a name with an underscore stays refused; str.format stays sandboxed
        with pytest.raises(TemplateProblem, match=r"_secret.*unsafe"):
            str(templates.subject("en", "invoice_due", "nudge-2", {"x": holder}))
        values = {"x": holder, "s": "{0._secret}"}
        with pytest.raises(TemplateProblem, match="_secret"):
            str(templates.subject("en", "invoice_due", "nudge-3", values))


def test_a_subject_is_always_one_line(tmp_path: Path) -> None:
    user = tmp_path / "templates"
    injected = "{% block subject %}Invoice\r\nBcc: victim@example.com\u2028{{ x }}{% endblock %}"
    write(user / "en" / "invoice_due" / "nudge-1.j2", injected)
    subject = str(Templates(user).subject("en", "invoice_due", "nudge-1", {"x": "a\nb"}))
    assert subject == "Invoice Bcc: victim@example.com a b"


def test_a_missing_template_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LookupError, match=r"no template fr/no_such_rule/x\.j2"):
        Templates().template("fr", "no_such_rule", "x")


def test_the_templates_directory_option(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    config = tmp_path / "followupd.toml"
    settings = parse_settings(
        MINIMAL_CONFIG + '[templates]\ndirectory = "mine"\n', config, {"HOME": str(tmp_path)}
    )
    assert settings.templates.directory == tmp_path / "mine"
    with pytest.raises(ConfigError, match=r"templates\.directory: .*absent is not a directory"):
        parse_settings(MINIMAL_CONFIG + '[templates]\ndirectory = "absent"\n', config, {})


def test_french_ordinal_first_and_single_full_stops(tmp_path: Path) -> None:
    user = tmp_path / "templates"
    text = "{% block text %}Le {{ day(when) }}, pour {{ name }}. Et ensuite...{% endblock %}"
    write(user / "fr" / "invoice_due" / "nudge-1.j2", text)
    subject = Templates(user).subject(
        "fr", "invoice_due", "nudge-1", {"when": date(2026, 9, 1), "name": "ACME Inc."}
    )
    assert subject.text() == "Le 1er septembre 2026, pour ACME Inc. Et ensuite..."


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("Atelier Lumen", "d'Atelier Lumen"),
        ("Élise Martin", "d'Élise Martin"),
        ("Globex", "de Globex"),
        ("Harborline", "de Harborline"),  # an h: never guessed
        ("", "de "),
    ],
)
def test_french_de_is_elided_before_a_vowel(name: str, said: str) -> None:
    assert helpers("fr")["de"](name) == said
