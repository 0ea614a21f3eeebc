"""The feed's files over HTTP, served by a real `followupd run`: linked by URL, one owner's only.

Claire's and Bob's clients each have an invoice 46 days late, so each owner
gets the formal notice to send (a task with its PDF) on the daemon's first
pass. The feed names the PDF by URL (``ATTACH;FILENAME=…;FMTTYPE=…:URL``),
and the daemon serves it there to the holder of that owner's token only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from icalendar import Calendar

from followupd.config.load import DATABASE_URL_VARIABLE
from followupd.rules.registry import RULES
from tests.conftest import ENGINES, fresh_postgres_database
from tests.daemon import followupd, get, vdirsyncer_subscribe, wait_for
from tests.smtpserver import free_port
from tests.test_feed import country_without_holiday, running
from tests.test_owners_feed import feed_urls
from tests.test_rule_formal_notice import pdf_text

ADDRESS = 'address = """\n12 rue des Lilas\n69003 Lyon"""\n'
NOT_FOUND = (404, b"not found\n")


@pytest.fixture(scope="module", params=ENGINES)
def daemon(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, int]]:
    """A running daemon with two owners, a formal notice due for each; its HTTP port."""
    home = tmp_path_factory.mktemp("files") / "home"
    home.mkdir()
    port = free_port()
    write_home(home, port)
    with pytest.MonkeyPatch.context() as patch:
        if request.param == "postgresql":
            url = fresh_postgres_database(request.getfixturevalue("postgres_url"))
            patch.setenv(DATABASE_URL_VARIABLE, url.render_as_string(hide_password=False))
        with running(home, port):
            yield home, port


def write_home(home: Path, port: int, feed: str = "") -> None:
    """The config (its [feed] section ending with `feed`) and data: a formal notice for each
    of two owners."""
    today = date.today()  # the daemon runs on the real clock
    country = country_without_holiday(today)
    owner = f'country = "{country}"\n{ADDRESS}'
    (home / "followupd.toml").write_text(
        f'[feed]\nlisten = "127.0.0.1:{port}"\n{feed}'
        '[business]\nsend_window = "00:00-23:59"\n'
        'working_days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]\n'
        + "".join(f"[rules.{name}]\nenabled = false\n" for name in RULES if name != "formal_notice")
        + '[[owners]]\nkey = "claire"\nname = "Claire Martin"\nemail = "claire@cabinet.example"\n'
        + owner
        + '[[owners]]\nkey = "bob"\nname = "Bob Durand"\nemail = "bob@cabinet.example"\n'
        + owner,
        encoding="utf-8",
    )
    late = today - timedelta(days=46)
    invoices = "".join(
        f'[[invoices]]\nnumber = "{number}"\nmission = "{mission}"\namount = 1200\n'
        f"issued = {late - timedelta(days=30)}\ndue = {late}\n"
        for number, mission in (("F-1", "acme-audit"), ("L-9", "lumen-crm"))
    )
    clients = "".join(
        f'[[clients]]\nkey = "{key}"\nname = "{name}"\ncountry = "{country}"\n'
        f'address = "4 avenue Foch\\n75016 Paris"\n'
        for key, name in (("acme", "ACME SA"), ("lumen", "Lumen SARL"))
    )
    (home / "data.toml").write_text(
        clients + f'[[missions]]\nkey = "acme-audit"\nclient = "acme"\ntitle = "Audit"\n'
        f"start = {today - timedelta(days=120)}\n"
        f'[[missions]]\nkey = "lumen-crm"\nclient = "lumen"\ntitle = "CRM"\nowner = "bob"\n'
        f"start = {today - timedelta(days=120)}\n" + invoices,
        encoding="utf-8",
    )


def notice(feed_url: str) -> Any:
    """The formal notice's task in the feed at `feed_url`, once it is there."""

    def found() -> Any:
        parsed = Calendar.from_ical(get(feed_url)[1])
        return next((todo for todo in parsed.todos if "ATTACH" in todo), None)

    wait_for(lambda: found() is not None, timeout=15, step=0.2)
    return found()


@pytest.mark.slow
def test_the_feed_links_the_pdf_and_serves_it_to_its_owner_only(
    daemon: tuple[Path, int], tmp_path: Path
) -> None:
    home, port = daemon
    urls = feed_urls(home)
    feed = get(urls["claire"])[1]
    task = notice(urls["claire"])
    attach = task["ATTACH"]
    assert dict(attach.params) == {
        "FILENAME": "mise-en-demeure-F-1.pdf",
        "FMTTYPE": "application/pdf",
    }
    link = str(attach)
    token = urls["claire"].rsplit("/", 1)[1].removesuffix(".ics")
    match = re.fullmatch(rf"http://127\.0\.0\.1:{port}/feed/{token}/files/(\d+)/(.+)", link)
    assert match is not None, link
    file_id, name = match.groups()
    assert name == "mise-en-demeure-F-1.pdf"
    assert b"BASE64" not in feed and b"ENCODING=" not in feed, "no file inline in the feed"

    status, data, headers = get(link)
    assert status == 200
    assert data.startswith(b"%PDF")
    assert headers["Content-Type"] == "application/pdf"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Disposition"].startswith(
        'attachment; filename="mise-en-demeure-F-1.pdf"'
    )
    text = pdf_text(data, tmp_path)
    assert "F-1" in text and "ACME SA" in text and "L-9" not in text

    assert get(link, {"If-None-Match": headers["ETag"]})[0] == 304
    assert get(link, {"If-None-Match": '"other"'})[0] == 200

    bob_token = urls["bob"].rsplit("/", 1)[1].removesuffix(".ics")
    bob_task = notice(urls["bob"])
    assert "L-9" in pdf_text(get(str(bob_task["ATTACH"]))[1], tmp_path)
    base = f"http://127.0.0.1:{port}/feed"
    refused = {
        "a wrong token": f"{base}/{'A' * 43}/files/{file_id}/{name}",
        "another owner's token": f"{base}/{bob_token}/files/{file_id}/{name}",
        "a wrong id": f"{base}/{token}/files/{int(file_id) + 1000}/{name}",
        "an id that is no number": f"{base}/{token}/files/x{file_id}/{name}",
        "a wrong name": f"{base}/{token}/files/{file_id}/lettre.pdf",
        "a path with ..": f"{base}/{token}/files/{file_id}/../{name}",
        "an encoded ..": f"{base}/{token}/files/{file_id}/%2E%2E",
        "a NUL in the name": f"{base}/{token}/files/{file_id}/{name}%00",
        "a line feed in the name": f"{base}/{token}/files/{file_id}/%0A{name}",
        "a DEL in the name": f"{base}/{token}/files/{file_id}/{name}%7F",
        "the token of the feed with .ics": f"{base}/{token}.ics/files/{file_id}/{name}",
    }
    for why, url in refused.items():
        assert get(url)[:2] == NOT_FOUND, why


@pytest.mark.slow
def test_the_links_follow_the_origin_the_feed_was_asked_at(daemon: tuple[Path, int]) -> None:
    """Behind a TLS proxy, the feed's links name the proxy, and the bytes stay the same."""
    home, port = daemon
    url = feed_urls(home)["claire"]
    direct = str(notice(url)["ATTACH"])
    proxied = {"Host": "calendar.example.net", "X-Forwarded-Proto": "https"}
    assert linked(get(url, proxied)[1]) == direct.replace(
        f"http://127.0.0.1:{port}", "https://calendar.example.net"
    )
    assert str(notice(url)["ATTACH"]) == direct, "each origin its own feed"
    https = direct.replace(f"http://127.0.0.1:{port}", "https://calendar.example.net")
    for told in (
        {"X-Forwarded-Proto": "https, http"},  # chained proxies: the first is the client's
        {"X-Forwarded-Proto": "HTTPS"},
        {"Forwarded": 'for="[2001:db8::1]:4711";proto=https;by=10.0.0.1, for=10.0.0.2;proto=http'},
        {"Forwarded": "Proto=https"},
        {"X-Forwarded-Proto": "gopher", "Forwarded": "proto=https"},
    ):
        assert linked(get(url, {"Host": "calendar.example.net", **told})[1]) == https, told
    untold = ({"X-Forwarded-Proto": "gopher"}, {"Forwarded": "proto=ftp"}, {"Forwarded": ";;"})
    for headers in untold:
        plain = direct.replace(f"127.0.0.1:{port}", "calendar.example.net")
        assert linked(get(url, {"Host": "calendar.example.net", **headers})[1]) == plain, headers
    assert linked(get(url, {"Host": "evil.example/path"})[1]) == direct, "where it came in"


@pytest.mark.slow
def test_public_url_is_the_links_origin_whatever_the_request_says(home: Path) -> None:
    port = free_port()
    write_home(home, port, 'public_url = "HTTPS://Calendar.example.net/"\n')
    with running(home, port):
        # `feed --url` gives the address to subscribe to: the proxy's, in https only
        shown = [line.split() for line in followupd(home, "feed", "--url").stdout.splitlines()]
        assert [key for key, _ in shown] == ["claire", "bob"], shown
        public = dict(shown)["claire"]
        assert re.fullmatch(r"https://calendar\.example\.net/feed/[^/]+\.ics", public)
        url = public.replace("https://calendar.example.net", f"http://127.0.0.1:{port}")
        link = str(notice(url)["ATTACH"])
        assert re.fullmatch(r"https://calendar\.example\.net/feed/[^/]+/files/\d+/[^/]+", link)
        for headers in (
            {"Host": "evil.example", "X-Forwarded-Proto": "http"},
            {"Host": "calendar.example.net", "Forwarded": "proto=http"},
        ):
            assert linked(get(url, headers)[1]) == link, headers
        path = link.removeprefix("https://calendar.example.net")
        status, data, _headers = get(f"http://127.0.0.1:{port}{path}")  # the proxy's request
        assert status == 200
        assert data.startswith(b"%PDF")


def linked(feed: bytes) -> str:
    """The URL of the one file the feed links."""
    (link,) = [str(todo["ATTACH"]) for todo in Calendar.from_ical(feed).todos if "ATTACH" in todo]
    return link


@pytest.mark.slow
def test_vdirsyncer_reads_the_feed_with_its_links(daemon: tuple[Path, int], tmp_path: Path) -> None:
    home, _port = daemon
    url = feed_urls(home)["claire"]
    link = str(notice(url)["ATTACH"])
    folder = vdirsyncer_subscribe(url, tmp_path)
    (synced,) = folder.glob("*.ics")
    (todo,) = Calendar.from_ical(synced.read_bytes()).todos
    assert str(todo["ATTACH"]) == link
    assert todo["ATTACH"].params["FILENAME"] == "mise-en-demeure-F-1.pdf"
