"""The iCalendar feed over HTTP, served by a real `followupd run`, read by a real client.

Three invoices fall due in the next three days, so their heads-up tasks for
the owner are due today and the two days before: the daemon records them on
start and they appear in the feed. vdirsyncer (Debian's package), subscribed
to the feed with its `http` storage, syncs it into a folder.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays
import pytest
from icalendar import Calendar
from sqlalchemy import update
from sqlalchemy.engine import URL

from followupd.channels.feed.build import build_feed
from followupd.store.db import Store
from followupd.store.models import LiveItem
from tests.daemon import (
    DISABLED,
    environment,
    followupd,
    get,
    healthy,
    vdirsyncer_subscribe,
    wait_for,
)
from tests.smtpserver import free_port

COUNTRIES = ("FR", "GB", "US", "JP", "DE", "CA")


def country_without_holiday(today: date) -> str:
    for country in COUNTRIES:
        if today not in holidays.country_holidays(country, years=today.year):
            return country
    raise AssertionError("every country is on holiday")


@pytest.fixture
def daemon(home: Path) -> Iterator[tuple[Path, int]]:
    """A running daemon with three owner tasks due, and its HTTP port."""
    port = free_port()
    today = date.today()  # the daemon runs on the real clock
    country = country_without_holiday(today)
    (home / "followupd.toml").write_text(
        '[owner]\nname = "Claire Martin"\nemail = "claire@cabinet.example"\n'
        f'country = "{country}"\n[feed]\nlisten = "127.0.0.1:{port}"\n'
        '[business]\nsend_window = "00:00-23:59"\n'
        'working_days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]\n'
        + "".join(f"[rules.{name}]\nenabled = false\n" for name in DISABLED),
        encoding="utf-8",
    )
    invoices = "".join(
        f'[[invoices]]\nnumber = "F-{n}"\nmission = "acme-audit"\namount = {n}00\n'
        f"issued = {today - timedelta(days=30)}\ndue = {today + timedelta(days=n)}\n"
        for n in (1, 2, 3)
    )
    (home / "data.toml").write_text(
        '[[clients]]\nkey = "acme"\nname = "ACME SA"\n'
        f'country = "{country}"\n'
        '[[contacts]]\nkey = "jdupont"\nclient = "acme"\nname = "Jeanne Dupont"\n'
        'email = "jeanne.dupont@acme.example"\n'
        '[[missions]]\nkey = "acme-audit"\nclient = "acme"\ntitle = "Audit"\n'
        f'contact = "jdupont"\nstart = {today - timedelta(days=60)}\n'
        f"contract_signed = {today - timedelta(days=61)}\n" + invoices,
        encoding="utf-8",
    )
    with running(home, port):
        yield home, port


@contextmanager
def running(home: Path, port: int) -> Iterator[None]:
    """`followupd run` on the config and data files in `home`, healthy on `port`."""
    assert followupd(home, "init").returncode == 0
    imported = followupd(home, "import", str(home / "data.toml"))
    assert imported.returncode == 0, imported.stderr
    process = subprocess.Popen(
        [sys.executable, "-m", "followupd", "--config", str(home / "followupd.toml"), "run"],
        env=environment(home), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        wait_for(lambda: healthy(port), timeout=20)
        yield
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
        assert process.returncode == 0, output


def feed_url(home: Path) -> str:
    urls = followupd(home, "feed", "--url").stdout.split()
    assert urls[1].startswith("webcal://") and urls[1][len("webcal") :] == urls[0][len("http") :]
    return urls[0]


def tasks(body: bytes) -> dict[str, str]:
    return {str(todo["UID"]): str(todo["STATUS"]) for todo in Calendar.from_ical(body).todos}


@pytest.mark.slow
def test_the_feed_is_stable_cached_and_guarded(daemon: tuple[Path, int]) -> None:
    home, port = daemon
    url = feed_url(home)
    expected = {f"invoice_due:F-{n}:heads-up@followupd" for n in (1, 2, 3)}
    wait_for(lambda: set(tasks(get(url)[1])) == expected, timeout=10, step=0.2)

    status, first, headers = get(url)
    assert status == 200
    assert headers["Content-Type"].startswith("text/calendar")
    parsed = Calendar.from_ical(first)
    assert tasks(first) == dict.fromkeys(expected, "NEEDS-ACTION")
    assert b"REFRESH-INTERVAL;VALUE=DURATION:PT1H" in first
    assert str(parsed["X-PUBLISHED-TTL"]) == "PT1H"
    zones = {str(tz["TZID"]) for tz in parsed.walk("VTIMEZONE")}
    used = {todo["DUE"].params["TZID"] for todo in parsed.todos}
    assert used <= zones, "a VTIMEZONE for every TZID"

    status, second, again = get(url)
    assert (status, second) == (200, first), "the same bytes while nothing changes"
    assert again["ETag"] == headers["ETag"]
    assert get(url, {"If-None-Match": headers["ETag"]})[0] == 304

    wrong = url.replace(url.rsplit("/", 1)[1], "A" * 43 + ".ics")
    assert (
        get(wrong)[:2] == get(f"http://127.0.0.1:{port}/nothing-here")[:2] == (404, b"not found\n")
    )
    assert get(url.removesuffix(".ics"))[0] == 404


@pytest.mark.slow
def test_a_change_shows_in_the_next_request_even_with_the_same_stamp(
    daemon: tuple[Path, int], database_url: URL
) -> None:
    """The daemon keeps the feed it built; any change to what it shows must still show."""
    home, _port = daemon
    url = feed_url(home)
    key = "invoice_due:F-2:heads-up"
    wait_for(lambda: f"{key}@followupd" in tasks(get(url)[1]), timeout=10, step=0.2)
    _, _, before = get(url)
    store = Store.open(database_url, create=False)
    try:
        with store.session() as session:  # completed, its updated_at left as it was
            session.execute(
                update(LiveItem).where(LiveItem.concern == key).values(state="completed")
            )
    finally:
        store.close()
    status, body, after = get(url)
    assert status == 200 and after["ETag"] != before["ETag"]
    assert tasks(body)[f"{key}@followupd"] == "COMPLETED"


@pytest.mark.slow
def test_vdirsyncer_subscribes_to_the_feed(daemon: tuple[Path, int], tmp_path: Path) -> None:
    home, _port = daemon
    url = feed_url(home)
    wait_for(lambda: len(tasks(get(url)[1])) == 3, timeout=10, step=0.2)
    folder = vdirsyncer_subscribe(url, tmp_path)
    files = sorted(folder.glob("*.ics"))
    assert len(files) == 3
    # vdirsyncer gives items whose UID is not safe as a file name a UID of its own
    summaries = {str(todo["SUMMARY"]) for path in files
                 for todo in Calendar.from_ical(path.read_bytes()).todos}  # fmt: skip
    served = {str(todo["SUMMARY"]) for todo in Calendar.from_ical(get(url)[1]).todos}
    assert summaries == served and len(served) == 3


def test_an_empty_feed_is_still_a_valid_calendar() -> None:
    built = build_feed([], ZoneInfo("Europe/Paris"), "followupd")
    assert built.count == 0
    parsed = Calendar.from_ical(built.body)
    assert parsed.name == "VCALENDAR" and parsed.subcomponents == []
    assert built.etag == build_feed([], ZoneInfo("Europe/Paris"), "followupd").etag
