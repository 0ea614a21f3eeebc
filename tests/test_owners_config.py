"""Several owners in the config: `[[owners]]`, its defaults, and its errors (file, line, key)."""

from __future__ import annotations

from pathlib import Path

import pytest

from followupd.cli.checks import sender_address_checks
from followupd.config.rule_options import InvoiceDueOptions
from followupd.domain.owner_scope import caldav_of, calendar_sources, scopes
from followupd.rules.registry import enabled_rules
from tests.conftest import MINIMAL_CONFIG, RunCli
from tests.rulekit import BOB_IN_MONTREAL, CLAIRE
from tests.test_config import _problem_at as at
from tests.test_config import _problems as problems
from tests.test_config import _settings as settings

TWO_OWNERS = (
    '[caldav]\nurl = "https://dav.example.net/"\nusername = "cabinet"\n'
    'password_env = "DAV_PW"\nread_calendars = ["Shared"]\n\n'
    + CLAIRE
    + 'read_calendars = ["Missions Claire"]\n\n'
    + BOB_IN_MONTREAL
    + "[owners.rules.invoice_due]\ngrace_days = 3\n"
    + "[owners.rules.new_year_greetings]\nenabled = false\n"
)


def with_bob(lines: str) -> str:
    """TWO_OWNERS with `lines` added to bob's table, right after his key."""
    return TWO_OWNERS.replace('key = "bob"\n', f'key = "bob"\n{lines}')


def test_several_owners_with_their_defaults(tmp_path: Path) -> None:
    loaded = settings(TWO_OWNERS, tmp_path)
    state = tmp_path / ".local" / "state" / "followupd"
    claire, bob = loaded.owners
    assert loaded.several_owners and (claire.key, bob.key) == ("claire", "bob")
    assert loaded.owner == claire.person, "the first owner is the default one"
    assert (bob.person.timezone, bob.person.language, bob.person.country) == (
        "America/Montreal",
        "en",
        "CA",
    )
    # the first owner inherits the single-owner form's token file and calendar
    assert claire.token_file == state / "feed.token"
    assert bob.token_file == state / "feed-bob.token"
    assert (claire.write_calendar, bob.write_calendar) == ("followupd", "followupd-bob")
    assert loaded.owner_for("bob") is bob
    assert loaded.owner_for(None) is claire and loaded.owner_for("gone") is claire
    assert bob.rule_overrides == {
        "invoice_due": {"grace_days": 3},
        "new_year_greetings": {"enabled": False},
    }
    assert claire.rule_overrides == {}


def test_an_owners_rule_options_are_merged_over_the_global_ones(tmp_path: Path) -> None:
    loaded = settings(TWO_OWNERS + "[rules.invoice_due]\ngrace_days = 10\n", tmp_path)
    claire, bob = loaded.owners
    (invoice,) = [rule for rule in enabled_rules(loaded.rules) if rule.name == "invoice_due"]
    assert invoice.for_owner(claire).options.grace_days == 10
    merged = invoice.for_owner(bob).options
    assert isinstance(merged, InvoiceDueOptions)
    assert merged.grace_days == 3
    assert merged.steps == loaded.rules.invoice_due.steps, "what bob did not write is global"
    (greetings,) = [r for r in enabled_rules(loaded.rules) if r.name == "new_year_greetings"]
    assert greetings.for_owner(claire).options.enabled
    assert not greetings.for_owner(bob).options.enabled


def test_a_rule_off_for_everyone_but_one_owner_runs_for_that_owner(tmp_path: Path) -> None:
    text = TWO_OWNERS.replace("[owners.rules.new_year_greetings]\nenabled = false\n", "")
    text += "[owners.rules.status_update_due]\nenabled = true\n"
    text += "[rules.status_update_due]\nenabled = false\n"
    loaded = settings(text, tmp_path)
    assert "status_update_due" not in {rule.name for rule in enabled_rules(loaded.rules)}
    rules = enabled_rules(loaded.rules, loaded.owners)
    (status,) = [rule for rule in rules if rule.name == "status_update_due"]
    claire, bob = loaded.owners
    assert (status.for_owner(claire).options.enabled, status.for_owner(bob).options.enabled) == (
        False,
        True,
    )


def test_calendars_per_owner_on_the_shared_account(tmp_path: Path) -> None:
    loaded = settings(TWO_OWNERS, tmp_path)
    claire, bob = loaded.owners
    mine = caldav_of(loaded, claire)
    assert mine is not None
    assert (mine.read_calendars, mine.write_calendar) == (("Missions Claire",), "followupd")
    theirs = caldav_of(loaded, bob)
    assert theirs is not None and (theirs.url, theirs.username) == (mine.url, mine.username)
    ((account, calendars),) = calendar_sources(loaded)
    assert account.url == "https://dav.example.net/"
    shown = [(c.name, c.writes, c.owner, c.timezone) for c in calendars]
    assert shown == [
        ("Shared", False, None, "Europe/Paris"),
        ("Missions Claire", False, "claire", "Europe/Paris"),
        ("followupd", True, "claire", "Europe/Paris"),
        ("followupd-bob", True, "bob", "America/Montreal"),
    ]


def test_an_owner_with_an_account_of_their_own(tmp_path: Path) -> None:
    text = with_bob('read_calendars = ["Clients"]\n') + (
        '[owners.caldav]\nurl = "https://dav.bob.example/"\nusername = "bob"\n'
        'password_file = "bob.secret"\n'
    )
    loaded = settings(text, tmp_path)
    bob = loaded.owners[1]
    theirs = caldav_of(loaded, bob)
    assert theirs is not None
    assert (theirs.url, theirs.write_calendar, theirs.read_calendars) == (
        "https://dav.bob.example/",
        "followupd",
        ("Clients",),
    )
    assert theirs.password_file == tmp_path / "bob.secret"
    accounts = [(account.url, [c.name for c in calendars]) for account, calendars in
                calendar_sources(loaded)]  # fmt: skip
    assert accounts == [
        ("https://dav.example.net/", ["Shared", "Missions Claire", "followupd"]),
        ("https://dav.bob.example/", ["Clients", "followupd"]),
    ]


def test_the_single_owner_form_is_one_owner_keyed_owner(tmp_path: Path) -> None:
    loaded = settings(MINIMAL_CONFIG, tmp_path)
    (only,) = loaded.owners
    assert not loaded.several_owners
    assert (only.key, only.person) == ("owner", loaded.owner)
    assert only.token_file == loaded.feed.token_file
    assert only.rule_overrides == {}
    (scope,) = scopes(loaded)
    assert (scope.key, scope.first, scope.others) == ("owner", True, ())


def test_owner_and_owners_together_is_an_error_at_owner(tmp_path: Path) -> None:
    found = problems(MINIMAL_CONFIG + TWO_OWNERS, tmp_path)
    problem = at(found, "owner")
    assert problem.line == 1
    assert "[owner] and [[owners]] cannot be used together" in problem.message
    assert str(problem).startswith(f"{tmp_path / 'followupd.toml'}:1: owner: ")


def test_the_mixed_form_is_reported_with_the_other_problems(tmp_path: Path) -> None:
    text = MINIMAL_CONFIG + TWO_OWNERS.replace('key = "bob"', 'key = "Bob!"')
    found = problems(text, tmp_path)
    assert at(found, "owner").line == 1
    bad_key = at(found, "owners[1].key")
    assert bad_key.line == 14 + MINIMAL_CONFIG.count("\n")
    assert "like 'claire'" in bad_key.message


def test_neither_form_names_the_owner_section(tmp_path: Path) -> None:
    assert "missing" in at(problems('[feed]\nlisten = "127.0.0.1:9"\n', tmp_path), "owner").message


def test_an_empty_owners_list_is_an_error(tmp_path: Path) -> None:
    assert "at least 1" in at(problems("owners = []\n", tmp_path), "owners").message


def test_a_key_used_twice_names_both_owners(tmp_path: Path) -> None:
    text = TWO_OWNERS.replace('key = "bob"', 'key = "claire"')
    problem = at(problems(text, tmp_path), "owners[1].key")
    assert problem.line == 14
    assert problem.message.startswith("key 'claire' is taken by owners[0] already")


def test_a_token_file_or_read_calendar_used_twice(tmp_path: Path) -> None:
    text = with_bob('feed_token_file = "feed.token"\nread_calendars = ["Missions Claire"]\n')
    found = problems(text, tmp_path)
    assert "is used by owners[0] already" in at(found, "owners[1].feed_token_file").message
    calendars = at(found, "owners[1].read_calendars")
    assert calendars.line == 16
    assert "calendar 'Missions Claire' is read by owners[0] already" in calendars.message


def test_read_calendars_need_an_account(tmp_path: Path) -> None:
    text = TWO_OWNERS.split("[[owners]]", 1)[1]
    problem = at(problems("[[owners]]" + text, tmp_path), "owners[0].read_calendars")
    assert problem.line == 5
    assert "no CalDAV account" in problem.message


@pytest.mark.parametrize(
    ("text", "line", "where", "suggestion"),
    [
        (with_bob('emial = "x@cabinet.example"\n'), 15, "owners[1].emial", "'email'?"),
        (TWO_OWNERS + "[owners.rules.invoic_due]\n", 24, "owners[1].rules.invoic_due",
         "'invoice_due'?"),
        (TWO_OWNERS + "[owners.rulse]\n", 24, "owners[1].rulse", "'rules'?"),
        (TWO_OWNERS + '[owners.caldav]\nurl = "https://dav.example.net/"\nwrite_calendar = "x"\n',
         26, "owners[1].caldav.write_calendar", "known keys here: ca_file, password_env"),
    ],
)  # fmt: skip
def test_an_unknown_key_of_an_owner_suggests_the_closest(
    tmp_path: Path, text: str, line: int, where: str, suggestion: str
) -> None:
    problem = at(problems(text, tmp_path), where)
    assert problem.line == line
    assert suggestion in problem.message


def test_an_owners_templates_directory_must_exist(tmp_path: Path) -> None:
    text = with_bob('templates = "bob-templates"\n')
    problem = at(problems(text, tmp_path), "owners[1].templates")
    assert "is not a directory" in problem.message
    (tmp_path / "bob-templates").mkdir()
    assert settings(text, tmp_path).owners[1].templates == tmp_path / "bob-templates"


def test_each_owner_chooses_how_reminders_reach_them_by_email(tmp_path: Path) -> None:
    claire, bob = settings(with_bob('reminders_by_email = "each"\n'), tmp_path).owners
    assert (claire.reminders_by_email, bob.reminders_by_email) == ("digest", "each")
    assert bob.person.reminders_by_email == "each", "what messages are given"
    text = with_bob('reminders_by_email = "never"\n')
    problem = at(problems(text, tmp_path), "owners[1].reminders_by_email")
    assert problem.line == text.splitlines().index('reminders_by_email = "never"') + 1
    assert all(repr(value) in problem.message for value in ("digest", "each", "off"))


def test_check_offline_lists_each_owner(home: Path, cli: RunCli) -> None:
    path = home / "followupd.toml"
    path.write_text(TWO_OWNERS, encoding="utf-8")
    result = cli("check", "--offline", "--config", path)
    assert result.code == 78, result  # the CalDAV password variable is not set
    assert "owner claire" in result.out and "owner bob" in result.out
    assert "feed-bob.token" in result.out
    assert "writes 'followupd-bob'" in result.out
    assert "own options for invoice_due, new_year_greetings" in result.out


def test_check_warns_of_an_owner_whose_formal_notices_have_no_sender_address(
    tmp_path: Path, home: Path, cli: RunCli
) -> None:
    """A *mise en demeure* names its sender in full: `check` says which owner has no
    address while formal notices are on for them, and fails nothing for it."""
    addressed = with_bob('address = "1 rue Haute\\n69001 Lyon"\n')
    found = sender_address_checks(settings(addressed, tmp_path))
    assert [(check.name, check.ok, check.warning) for check in found] == [
        ("[[owners]] 'claire' address", True, True)
    ], "claire has none, bob has one"
    off = addressed + "[rules.formal_notice]\nenabled = false\n"
    assert sender_address_checks(settings(off, tmp_path)) == []
    bob_only = (
        TWO_OWNERS  # ends with bob's table
        + "[owners.rules.formal_notice]\nenabled = true\n"
        + "[rules.formal_notice]\nenabled = false\n"
    )
    assert [check.name for check in sender_address_checks(settings(bob_only, tmp_path))] == [
        "[[owners]] 'bob' address"
    ], "on for bob alone"
    path = home / "followupd.toml"
    path.write_text(MINIMAL_CONFIG, encoding="utf-8")
    result = cli("check", "--offline", "--config", path)
    assert result.code == 0, result
    assert "[owner] address" in result.out and "warn" in result.out
    assert "no sender's postal address" in result.out
