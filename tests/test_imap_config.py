"""The mailbox in the config: `[imap]`, `[owners.imap]`, and the rule options that read it.

Every mistake is reported with the file, the line and the dotted key, like
any other section's; the password is never shown, whether it is read from a
file or the environment.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from followupd.config.rule_options import STATUS_UPDATE_SUBJECTS, StatusUpdateDueOptions
from followupd.domain.owner_scope import has_mailboxes, imap_of, mailbox_sources
from tests.conftest import RunCli
from tests.rulekit import BOB, CLAIRE
from tests.test_config import OWNER, SECRET_VALUE
from tests.test_config import _problem_at as at
from tests.test_config import _problems as problems
from tests.test_config import _settings as settings

IMAP = '[imap]\nurl = "imaps://imap.example.net/"\nusername = "claire"\npassword_env = "IMAP_PW"\n'
IMAP_LINE = OWNER.count("\n") + 1  # the line of [imap] after OWNER


def imap(*lines: str, url: str = "imaps://imap.example.net/") -> str:
    """OWNER and an [imap] table of `url` with a login, and `lines` after them."""
    return (
        OWNER
        + IMAP.replace("imaps://imap.example.net/", url)
        + "".join(f"{line}\n" for line in lines)
    )


def line_of(text: str, start: str) -> int:
    """The number of the first line of `text` that starts with `start`."""
    return next(n for n, line in enumerate(text.splitlines(), 1) if line.startswith(start))


# -- [imap] --------------------------------------------------------------------------------


def test_an_imaps_account_with_its_defaults(tmp_path: Path) -> None:
    loaded = settings(imap(), tmp_path)
    account = loaded.imap
    assert account is not None
    assert (account.effective_security, account.host, account.port) == (
        "tls",
        "imap.example.net",
        993,
    )
    assert account.folders == ("INBOX",)
    assert account.sent_folder is None, "found on the server: the folder marked \\Sent"
    assert account.ca_file is None
    assert account.account == "claire@imap.example.net:993"
    assert imap_of(loaded, loaded.owners[0]) is account
    assert mailbox_sources(loaded) == [(account, None)]


def test_without_imap_no_mailbox_is_read(tmp_path: Path) -> None:
    loaded = settings(OWNER, tmp_path)
    assert loaded.imap is None
    assert imap_of(loaded, loaded.owners[0]) is None
    assert mailbox_sources(loaded) == [] and not has_mailboxes(loaded)


@pytest.mark.parametrize(
    ("url", "security", "port"),
    [
        ("imap://imap.example.net/", "starttls", 143),
        ("imap://imap.example.net:1143", "starttls", 1143),
        ("imaps://imap.example.net:10993/", "tls", 10993),
        ("IMAPS://Imap.Example.NET/", "tls", 993),
    ],
)
def test_the_url_says_how_tls_is_used(tmp_path: Path, url: str, security: str, port: int) -> None:
    account = settings(imap(url=url), tmp_path).imap
    assert account is not None
    assert (account.effective_security, account.port) == (security, port)
    assert account.account == f"claire@imap.example.net:{port}"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "[::1]", "localhost"])
def test_plain_imap_is_allowed_on_loopback(tmp_path: Path, host: str) -> None:
    account = settings(imap('security = "none"', url=f"imap://{host}:1143/"), tmp_path).imap
    assert account is not None
    assert (account.effective_security, account.port) == ("none", 1143)


@pytest.mark.parametrize(
    ("url", "security", "words"),
    [
        ("imap://imap.example.net/", "none", "only allowed on loopback"),
        ("imap://192.168.1.10/", "none", "only allowed on loopback"),
        ("imap://localhost.example.net/", "none", "only allowed on loopback"),
        ("imaps://imap.example.net/", "starttls", "TLS from the first byte"),
        ("imaps://127.0.0.1/", "none", "TLS from the first byte"),
        ("imap://imap.example.net/", "tls", "use imaps://"),
        ("imap://imap.example.net/", "ssl", "'tls', 'starttls' or 'none'"),
    ],
)
def test_a_security_the_url_does_not_allow(
    tmp_path: Path, url: str, security: str, words: str
) -> None:
    text = imap(f'security = "{security}"', url=url)
    problem = at(problems(text, tmp_path), "imap.security")
    assert problem.line == line_of(text, "security =")
    assert problem.file == tmp_path / "followupd.toml"
    assert words in problem.message


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("https://imap.example.net/", "must be an IMAP URL"),
        ("imap.example.net", "must be an IMAP URL"),
        ("imaps:///", "must be an IMAP URL"),
        ("imaps://imap.example.net/INBOX", "name the server only"),
        ("imaps://imap.example.net/?auth=plain", "name the server only"),
        ("imaps://imap.example.net:99999/", "from 1 to 65535"),
        ("imaps://imap.example.net:0/", "from 1 to 65535"),
        ("imaps://imap.example.net:port/", "from 1 to 65535"),
        (f"imaps://claire:{SECRET_VALUE}@imap.example.net/", "password_file or password_env"),
        ("imaps://claire@imap.example.net/", "put the user in username"),
    ],
)
def test_a_url_that_is_not_an_imap_server(tmp_path: Path, url: str, words: str) -> None:
    text = imap(url=url)
    problem = at(problems(text, tmp_path), "imap.url")
    assert problem.line == line_of(text, "url =")
    assert words in problem.message
    assert SECRET_VALUE not in str(problem)


def test_a_login_needs_a_username_and_a_password(tmp_path: Path) -> None:
    text = OWNER + '[imap]\nurl = "imaps://imap.example.net/"\n'
    found = problems(text, tmp_path)
    username = at(found, "imap.username")
    assert (username.line, username.message) == (IMAP_LINE, "missing required key")
    text += 'username = "claire"\n'
    password = at(problems(text, tmp_path), "imap")
    assert password.line == IMAP_LINE
    assert "password_file or password_env" in password.message


def test_password_file_and_env_together_is_an_error(tmp_path: Path) -> None:
    text = imap('password_file = "imap.secret"')
    problem = at(problems(text, tmp_path), "imap")
    assert "not both" in problem.message


def test_a_relative_password_file_is_next_to_the_config(tmp_path: Path) -> None:
    text = imap().replace('password_env = "IMAP_PW"', 'password_file = "imap.secret"')
    account = settings(text, tmp_path).imap
    assert account is not None
    assert account.password_file == tmp_path / "imap.secret"


@pytest.mark.parametrize(
    ("lines", "key", "words"),
    [
        (["folders = []"], "imap.folders", "at least 1"),
        (['folders = ["INBOX", "inbox"]'], "imap.folders", "listed twice"),
        (['folders = ["INBOX", "Clients\\nX"]'], "imap.folders[1]", "line breaks"),
        (['folders = ["Clients"]', 'sent_folder = "Clients"'], "imap.sent_folder", "in folders"),
        (['sent_folder = "inbox"'], "imap.sent_folder", "'INBOX' is in folders"),
        (['sent_folder = ""'], "imap.sent_folder", "at least 1 character"),
        (['folder = ["Clients"]'], "imap.folder", "did you mean 'folders'?"),
        (['ca_file = ["a", "b"]'], "imap.ca_file", "path"),
    ],
)
def test_folders_problems_name_their_key(
    tmp_path: Path, lines: list[str], key: str, words: str
) -> None:
    text = imap(*lines)
    problem = at(problems(text, tmp_path), key)
    assert problem.line == line_of(text, lines[-1].split(" ")[0] + " ")
    assert words in problem.message


def test_folders_and_the_sent_folder_as_written(tmp_path: Path) -> None:
    text = imap('folders = ["inbox", "Clients/Réponses"]', 'sent_folder = "Éléments envoyés"')
    account = settings(text, tmp_path).imap
    assert account is not None
    assert account.folders == ("INBOX", "Clients/Réponses")
    assert account.sent_folder == "Éléments envoyés"


def test_every_imap_problem_at_once_in_line_order(tmp_path: Path) -> None:
    text = OWNER + (
        '[imap]\nurl = "imap://imap.example.net/"\nsecurity = "none"\n'
        'folders = ["INBOX", "INBOX"]\nfolder = "x"\n'
    )
    found = problems(text, tmp_path)
    where = [(problem.line, problem.where) for problem in found]
    assert where == [
        (IMAP_LINE, "imap.username"),
        (IMAP_LINE + 2, "imap.security"),
        (IMAP_LINE + 3, "imap.folders"),
        (IMAP_LINE + 4, "imap.folder"),
    ]


# -- [owners.imap] -------------------------------------------------------------------------

BRUNO_IMAP = (
    '[owners.imap]\nurl = "imap://mail.bruno.example/"\nusername = "bruno"\n'
    'password_file = "bruno.secret"\nfolders = ["INBOX", "Clients"]\n'
)


def test_each_owner_with_a_mailbox_of_their_own(tmp_path: Path) -> None:
    text = CLAIRE + IMAP.replace("[imap]", "[owners.imap]") + BOB + BRUNO_IMAP
    loaded = settings(text, tmp_path)
    claire, bob = loaded.owners
    assert loaded.imap is None
    assert claire.imap is not None and bob.imap is not None
    assert (bob.imap.effective_security, bob.imap.port) == ("starttls", 143)
    assert bob.imap.folders == ("INBOX", "Clients")
    assert bob.imap.password_file == tmp_path / "bruno.secret"
    assert imap_of(loaded, claire) is claire.imap and imap_of(loaded, bob) is bob.imap
    assert mailbox_sources(loaded) == [(claire.imap, "claire"), (bob.imap, "bob")]


def test_a_shared_mailbox_and_an_owners_own(tmp_path: Path) -> None:
    loaded = settings(IMAP + CLAIRE + BOB + BRUNO_IMAP, tmp_path)
    claire, bob = loaded.owners
    assert loaded.imap is not None and bob.imap is not None
    assert imap_of(loaded, claire) is loaded.imap, "claire's mail is in the shared mailbox"
    assert imap_of(loaded, bob) is bob.imap
    assert mailbox_sources(loaded) == [(loaded.imap, None), (bob.imap, "bob")]
    assert loaded.rules.client_replied.enabled


def test_one_owner_listed_alone_has_their_mailbox_read_as_the_only_one(tmp_path: Path) -> None:
    loaded = settings(IMAP + BOB + BRUNO_IMAP, tmp_path)
    (bob,) = loaded.owners
    assert mailbox_sources(loaded) == [(bob.imap, None)], "theirs, not [imap], and keyed None"


def test_two_owners_cannot_read_one_mailbox(tmp_path: Path) -> None:
    text = CLAIRE + BRUNO_IMAP + BOB + BRUNO_IMAP.replace("imap://", "IMAP://")
    problem = at(problems(text, tmp_path), "owners[1].imap")
    bobs = text.splitlines().index("[owners.imap]", line_of(text, 'key = "bob"')) + 1
    assert problem.line == bobs
    assert "mailbox bruno@mail.bruno.example:143 is read by owners[0] already" in problem.message


def test_an_owners_mailbox_cannot_be_the_shared_one(tmp_path: Path) -> None:
    text = IMAP + CLAIRE + BOB + IMAP.replace("[imap]", "[owners.imap]")
    problem = at(problems(text, tmp_path), "owners[1].imap")
    assert "is read by [imap] already" in problem.message


def test_an_owners_imap_problem_names_the_owner(tmp_path: Path) -> None:
    text = CLAIRE + BOB + BRUNO_IMAP.replace('"bruno.secret"', '"b"\nsecurity = "none"')
    problem = at(problems(text, tmp_path), "owners[1].imap.security")
    assert problem.line == line_of(text, "security =")
    assert "only allowed on loopback" in problem.message


# -- [rules.client_replied] ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "enabled"),
    [
        (OWNER, False),
        (imap(), True),
        (CLAIRE + BOB + BRUNO_IMAP, True),
        (imap("[rules.client_replied]", "enabled = false"), False),
        (imap("[rules.client_replied]", "pause_working_days = 3"), True),
        (OWNER + "[rules.client_replied]\nenabled = true\n", True),
    ],
)
def test_client_replied_is_on_by_default_only_with_a_mailbox(
    tmp_path: Path, text: str, enabled: bool
) -> None:
    assert settings(text, tmp_path).rules.client_replied.enabled is enabled


def test_client_replied_options(tmp_path: Path) -> None:
    loaded = settings(imap("[rules.client_replied]", "pause_working_days = 3"), tmp_path)
    assert loaded.rules.client_replied.pause_working_days == 3
    assert settings(imap(), tmp_path).rules.client_replied.pause_working_days == 7
    text = imap("[rules.client_replied]", "pause_working_days = -1")
    problem = at(problems(text, tmp_path), "rules.client_replied.pause_working_days")
    assert problem.line == line_of(text, "pause_working_days")


def test_an_owner_may_turn_client_replied_off_for_themselves(tmp_path: Path) -> None:
    text = CLAIRE + BOB + BRUNO_IMAP + "[owners.rules.client_replied]\nenabled = false\n"
    loaded = settings(text, tmp_path)
    assert loaded.rules.client_replied.enabled
    assert loaded.owners[1].rule_overrides == {"client_replied": {"enabled": False}}


# -- [rules.status_update_due] subject_pattern ---------------------------------------------


@pytest.mark.parametrize(
    "subject",
    [
        "Point d'avancement - semaine 49",
        "RE: point d’étape du projet",
        "POINT D'ETAPE",
        "Point d'e\u0301tape (accent combining)",
        "Compte rendu de la réunion",
        "compte-rendu",
        "Weekly Status Update",
        "progress report #3",
    ],
)
def test_the_default_pattern_finds_status_updates(subject: str) -> None:
    assert StatusUpdateDueOptions().is_status_update(subject)


@pytest.mark.parametrize(
    "subject", ["Facture F-042", "Point sur la facture", "Re: votre rendu", "status", ""]
)
def test_the_default_pattern_leaves_other_subjects(subject: str) -> None:
    assert not StatusUpdateDueOptions().is_status_update(subject)


def test_a_pattern_of_ones_own_matches_with_or_without_accents(tmp_path: Path) -> None:
    text = OWNER + '[rules.status_update_due]\nsubject_pattern = "^bilan (hebdo|mensuel)|récap"\n'
    options = settings(text, tmp_path).rules.status_update_due
    assert options.subject_pattern == "^bilan (hebdo|mensuel)|récap"
    assert options.is_status_update("Bilan hebdo")
    assert options.is_status_update("RÉCAP de la semaine")
    assert not options.is_status_update("Re: Bilan hebdo"), "anchored where the user says"
    assert not options.is_status_update("Point d'avancement"), "replaces the default"
    loose = StatusUpdateDueOptions(subject_pattern="recap")
    assert loose.is_status_update("Récap"), "accents may be left out of the pattern"
    assert StatusUpdateDueOptions().subject_pattern == STATUS_UPDATE_SUBJECTS


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        ("point d'(avancement", "not a regular expression: missing )"),
        ("[a-", "not a regular expression"),
        ("(?P<x>a)(?P<x>b)", "not a regular expression"),
        (".*", "matches an empty subject"),
        ("point|", "matches an empty subject"),
    ],
)
def test_a_bad_pattern_is_a_config_error_naming_the_key(
    tmp_path: Path, pattern: str, words: str
) -> None:
    text = OWNER + "\n[rules.status_update_due]\nevery_days = 14\n"
    text += f"subject_pattern = {json.dumps(pattern)}\n"  # a TOML basic string too
    problem = at(problems(text, tmp_path), "rules.status_update_due.subject_pattern")
    assert problem.line == line_of(text, "subject_pattern")
    assert words in problem.message


def test_an_owners_bad_pattern_names_the_owner(tmp_path: Path) -> None:
    text = CLAIRE + BOB + "[owners.rules.status_update_due]\nsubject_pattern = '(('\n"
    problem = at(problems(text, tmp_path), "owners[1].rules.status_update_due.subject_pattern")
    assert problem.line == line_of(text, "subject_pattern")


def test_an_owners_pattern_is_their_own(tmp_path: Path) -> None:
    text = CLAIRE + BOB + "[owners.rules.status_update_due]\nsubject_pattern = 'weekly'\n"
    bob = settings(text, tmp_path).owners[1]
    assert bob.rule_overrides == {"status_update_due": {"subject_pattern": "weekly"}}


# -- secrets and `check` --------------------------------------------------------------------


def test_check_offline_reads_the_imap_password_and_never_prints_it(home: Path, cli: RunCli) -> None:
    (home / "imap.secret").write_text(SECRET_VALUE + "\n", encoding="utf-8")
    path = home / "followupd.toml"
    text = imap('folders = ["INBOX", "Clients"]', 'sent_folder = "Envoyés"')
    path.write_text(text.replace('password_env = "IMAP_PW"', 'password_file = "imap.secret"'))
    result = cli("check", "--offline", "--config", path)
    assert result.code == 0, result
    assert "imap password" in result.out and "readable" in result.out
    assert str(home / "imap.secret") in result.out.replace("\n", "")
    assert "'Clients'" in result.out and "'Envoyés'" in result.out
    assert "imaps://imap.example.net/ TLS, user claire" in result.out
    assert "rules enabled" in result.out and "client_replied" in result.out
    assert SECRET_VALUE not in result.out + result.err


def test_check_offline_names_an_imap_password_variable_that_is_not_set(
    home: Path, cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IMAP_PW", raising=False)
    path = home / "followupd.toml"
    path.write_text(imap())
    result = cli("check", "--offline", "--config", path)
    assert result.code == 78, result
    line = next(line for line in result.out.splitlines() if line.startswith("imap password"))
    assert "FAILED" in line and "$IMAP_PW" in line
    monkeypatch.setenv("IMAP_PW", SECRET_VALUE)
    result = cli("check", "--offline", "--config", path)
    assert result.code == 0, result
    assert "$IMAP_PW" in result.out and SECRET_VALUE not in result.out + result.err


def test_check_offline_reads_each_owners_imap_password(home: Path, cli: RunCli) -> None:
    (home / "bruno.secret").write_text(SECRET_VALUE, encoding="utf-8")
    path = home / "followupd.toml"
    path.write_text(CLAIRE + BOB + BRUNO_IMAP)
    result = cli("check", "--offline", "--config", path)
    assert result.code == 0, result
    assert "owners.bob.imap password" in result.out
    assert "the owners' own are read" in result.out
    assert SECRET_VALUE not in result.out + result.err


def test_the_imap_secret_is_never_in_a_repr(tmp_path: Path) -> None:
    (tmp_path / "imap.secret").write_text(SECRET_VALUE, encoding="utf-8")
    text = imap().replace('password_env = "IMAP_PW"', 'password_file = "imap.secret"')
    loaded = settings(text, tmp_path)
    assert loaded.imap is not None
    secret = loaded.imap.password("imap")
    assert secret.reveal({}) == SECRET_VALUE
    assert SECRET_VALUE not in repr(loaded) + repr(secret) + repr(mailbox_sources(loaded))
