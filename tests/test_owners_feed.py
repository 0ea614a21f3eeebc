"""One feed per owner, served by a real `followupd run`: each token opens its owner's tasks only.

Claire's mission has two invoices falling due, Bob's one: their heads-up
tasks are due today or just before, so the daemon records them on start.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from followupd.config.load import DATABASE_URL_VARIABLE
from tests.conftest import ENGINES, fresh_postgres_database
from tests.daemon import DISABLED, followupd, get, wait_for
from tests.smtpserver import free_port
from tests.test_feed import country_without_holiday, running, tasks


@pytest.fixture(scope="module", params=ENGINES)
def daemon(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, int]]:
    """A running daemon with two owners and owner tasks due for each; its HTTP port.

    On each engine: on PostgreSQL, the daemon is pointed at a fresh database.
    """
    home = tmp_path_factory.mktemp("owners") / "home"
    home.mkdir()
    port = free_port()
    today = date.today()  # the daemon runs on the real clock
    country = country_without_holiday(today)
    owner = f'country = "{country}"\n'
    (home / "followupd.toml").write_text(
        f'[feed]\nlisten = "127.0.0.1:{port}"\n'
        '[business]\nsend_window = "00:00-23:59"\n'
        'working_days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]\n'
        + "".join(f"[rules.{name}]\nenabled = false\n" for name in DISABLED)
        + '[[owners]]\nkey = "claire"\nname = "Claire Martin"\nemail = "claire@cabinet.example"\n'
        + owner
        + '[[owners]]\nkey = "bob"\nname = "Bob Durand"\nemail = "bob@cabinet.example"\n'
        + owner,
        encoding="utf-8",
    )
    invoices = "".join(
        f'[[invoices]]\nnumber = "F-{n}"\nmission = "{mission}"\namount = {n}00\n'
        f"issued = {today - timedelta(days=30)}\ndue = {today + timedelta(days=n)}\n"
        for n, mission in ((1, "acme-audit"), (2, "acme-audit"), (3, "lumen-crm"))
    )
    (home / "data.toml").write_text(
        f'[[clients]]\nkey = "acme"\nname = "ACME SA"\ncountry = "{country}"\n'
        f'[[clients]]\nkey = "lumen"\nname = "Lumen"\ncountry = "{country}"\n'
        f'[[missions]]\nkey = "acme-audit"\nclient = "acme"\ntitle = "Audit"\n'
        f"start = {today - timedelta(days=60)}\n"
        f'[[missions]]\nkey = "lumen-crm"\nclient = "lumen"\ntitle = "CRM"\nowner = "bob"\n'
        f"start = {today - timedelta(days=60)}\n" + invoices,
        encoding="utf-8",
    )
    with pytest.MonkeyPatch.context() as patch:
        if request.param == "postgresql":
            url = fresh_postgres_database(request.getfixturevalue("postgres_url"))
            patch.setenv(DATABASE_URL_VARIABLE, url.render_as_string(hide_password=False))
        with running(home, port):
            yield home, port


def feed_urls(home: Path) -> dict[str, str]:
    """Each owner's http URL, from `followupd feed --url`."""
    lines = followupd(home, "feed", "--url").stdout.splitlines()
    pairs = [line.split() for line in lines]
    assert [key for key, _ in pairs] == ["claire", "claire", "bob", "bob"]
    return {key: url for key, url in pairs if url.startswith("http://")}


@pytest.mark.slow
def test_each_token_opens_its_owners_feed_only(daemon: tuple[Path, int]) -> None:
    home, port = daemon
    urls = feed_urls(home)
    assert urls["claire"] != urls["bob"]
    claire = {"invoice_due:F-1:heads-up@followupd", "invoice_due:F-2:heads-up@followupd"}
    bob = {"invoice_due:F-3:heads-up@followupd"}
    wait_for(lambda: set(tasks(get(urls["claire"])[1])) == claire, timeout=10, step=0.2)
    assert set(tasks(get(urls["bob"])[1])) == bob
    assert b"X-WR-CALNAME:followupd \xe2\x80\x94 Bob Durand" in get(urls["bob"])[1]

    wrong = urls["bob"].replace(urls["bob"].rsplit("/", 1)[1], "B" * 43 + ".ics")
    assert get(wrong)[:2] == (404, b"not found\n")
    assert get(f"http://127.0.0.1:{port}/nothing-here")[:2] == (404, b"not found\n")


@pytest.mark.slow
def test_feed_command_per_owner(daemon: tuple[Path, int]) -> None:
    home, _port = daemon
    urls = feed_urls(home)
    only = followupd(home, "feed", "--owner", "bob", "--url").stdout.split()
    assert only == [urls["bob"], "webcal" + urls["bob"].removeprefix("http")]
    told = followupd(home, "feed").stdout
    assert f"claire (Claire Martin): {urls['claire']}" in told
    assert f"bob (Bob Durand): {urls['bob']}" in told
    unknown = followupd(home, "feed", "--owner", "alice")
    assert unknown.returncode == 2
    assert "no owner 'alice' in the config (owners: claire, bob)" in unknown.stderr
    state = home / ".local" / "state" / "followupd"  # the default state directory
    assert urls["claire"].endswith(f"/{(state / 'feed.token').read_text().strip()}.ics")
    token = state / "feed-bob.token"
    assert urls["bob"].endswith(f"/{token.read_text().strip()}.ics")
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
