"""The feed's listener stays on loopback unless the config allows more (issue 12, point 9)."""

from __future__ import annotations

import asyncio
import http.client
import logging
import socket
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest
from aiohttp import web

from followupd.config.load import parse_settings
from followupd.config.sections import FeedSection
from followupd.daemon.http import Handlers, listen, warn_if_remote, web_app
from followupd.errors import ConfigError
from tests.conftest import MINIMAL_CONFIG, RunCli
from tests.daemon import followupd
from tests.smtpserver import free_port

T = TypeVar("T")


def feed_problems(feed: str, tmp_path: Path) -> dict[str, tuple[int | None, str]]:
    with pytest.raises(ConfigError) as caught:
        parse_settings(MINIMAL_CONFIG + feed, tmp_path / "followupd.toml", {"HOME": str(tmp_path)})
    return {p.where or "": (p.line, p.message) for p in caught.value.problems}


def feed_of(feed: str, tmp_path: Path) -> FeedSection:
    text = MINIMAL_CONFIG + feed
    return parse_settings(text, tmp_path / "followupd.toml", {"HOME": str(tmp_path)}).feed


def test_a_wildcard_listen_address_exits_78_with_file_line_and_key(cli: RunCli, home: Path) -> None:
    path = home / "followupd.toml"
    path.write_text(MINIMAL_CONFIG + '[feed]\nlisten = "0.0.0.0:8731"\n', encoding="utf-8")
    result = cli("check", "--offline", "--config", path)
    assert result.code == 78, result
    assert f"{path}:7: feed.listen: 0.0.0.0 is not a loopback address" in result.err
    assert "allow_remote = true" in result.err


@pytest.mark.parametrize(
    "listen",
    [
        "0.0.0.0:8731",  # every IPv4 interface
        "[::]:8731",  # every interface
        "192.168.1.10:8731",  # a LAN address
        "[fe80::1]:8731",  # a link-local one
        "feed.example.net:8731",  # a name may resolve anywhere
        "localhost.example.net:8731",
    ],
)
def test_an_address_beyond_loopback_is_refused(tmp_path: Path, listen: str) -> None:
    problems = feed_problems(f'[feed]\nlisten = "{listen}"\n', tmp_path)
    assert list(problems) == ["feed.listen"]
    line, message = problems["feed.listen"]
    assert line == 7
    assert "not a loopback address" in message and "allow_remote" in message


@pytest.mark.parametrize(
    "listen",
    ["127.0.0.1:8731", "127.0.0.2:9000", "localhost:8731", "LOCALHOST:8731", "[::1]:8731",
     "[::ffff:127.0.0.1]:8731"],
)  # fmt: skip
def test_loopback_addresses_need_nothing_more(tmp_path: Path, listen: str) -> None:
    feed = feed_of(f'[feed]\nlisten = "{listen}"\n', tmp_path)
    assert feed.listen == listen
    assert not feed.remote
    assert not feed.allow_remote


def test_allow_remote_lets_any_address_be_used(tmp_path: Path) -> None:
    feed = feed_of('[feed]\nlisten = "[::]:8731"\nallow_remote = true\n', tmp_path)
    assert (feed.host, feed.port, feed.remote) == ("::", 8731, True)
    order = feed_of('[feed]\nallow_remote = true\nlisten = "0.0.0.0:8731"\n', tmp_path)
    assert order.remote, "the order of the keys does not matter"


def test_a_wrong_allow_remote_is_one_problem(tmp_path: Path) -> None:
    problems = feed_problems('[feed]\nlisten = "0.0.0.0:8731"\nallow_remote = "yes"\n', tmp_path)
    assert list(problems) == ["feed.allow_remote"], "not a second one at feed.listen"
    assert problems["feed.allow_remote"][0] == 8


def test_the_default_is_loopback(tmp_path: Path) -> None:
    feed = feed_of("", tmp_path)
    assert (feed.listen, feed.allow_remote, feed.remote) == ("127.0.0.1:8731", False, False)


def served(feed: FeedSection, ask: Callable[[], T]) -> T:
    """Start the daemon's HTTP side where `feed` says (a healthy daemon, no owner), run
    `ask` against it in a thread, stop: what `ask` returned."""
    handlers = Handlers(
        owner_of=lambda _token: None,
        feed=lambda _owner, _at, _origin: None,
        file=lambda _owner, _file: None,
        health=lambda: (True, "ok"),
        metrics=lambda: b"followupd_up 1\n",
        now=lambda: datetime(2026, 12, 1, tzinfo=UTC),
    )

    async def run() -> T:
        runner = web.AppRunner(web_app(handlers, feed.public_url, feed.host), access_log=None)
        await runner.setup()
        try:
            await listen(runner, feed)
            return await asyncio.to_thread(ask)
        finally:
            await runner.cleanup()

    return asyncio.run(run())


def serve_once(feed: FeedSection) -> tuple[int, bytes]:
    """Start the daemon's HTTP side where `feed` says, ask /healthz on 127.0.0.1, stop."""

    def fetch() -> tuple[int, bytes]:
        with urllib.request.urlopen(f"http://127.0.0.1:{feed.port}/healthz", timeout=5) as answer:
            return int(answer.status), bytes(answer.read())

    return served(feed, fetch)


def test_allow_remote_is_said_in_the_log_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # what `listen` says before it binds; the suite itself never listens beyond loopback
    feed = feed_of('[feed]\nlisten = "0.0.0.0:8731"\nallow_remote = true\n', tmp_path)
    with caplog.at_level(logging.INFO, logger="followupd"):
        warn_if_remote(feed)
    [remote, no_public_url] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert remote.getMessage().startswith(
        "the feed listens on 0.0.0.0:8731, beyond this machine (allow_remote = true): "
        "the feed, /metrics and /healthz are served in plain HTTP"
    )
    assert no_public_url.getMessage().startswith("[feed] public_url is not set: the links")


def test_allow_remote_with_a_public_url_is_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    feed = feed_of(
        '[feed]\nlisten = "0.0.0.0:8731"\nallow_remote = true\n'
        'public_url = "https://calendar.example.net"\n',
        tmp_path,
    )
    with caplog.at_level(logging.INFO, logger="followupd"):
        warn_if_remote(feed)
    [remote] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "public_url" not in remote.getMessage()


def test_loopback_is_not_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    feed = feed_of(f'[feed]\nlisten = "127.0.0.1:{free_port()}"\n', tmp_path)
    with caplog.at_level(logging.INFO, logger="followupd"):
        assert serve_once(feed) == (200, b"ok\n")
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_the_feed_url_names_this_machine_when_listening_on_every_interface(
    cli: RunCli, home: Path
) -> None:
    (home / "followupd.toml").write_text(
        MINIMAL_CONFIG + '[feed]\nlisten = "0.0.0.0:8731"\nallow_remote = true\n', encoding="utf-8"
    )
    shown = cli("feed", "--url")
    assert shown.code == 0, shown
    assert shown.out.startswith(f"http://{socket.gethostname()}:8731/feed/"), shown.out
    assert "0.0.0.0" not in shown.out


def statuses_by_host(feed: FeedSection, hosts: list[str], path: str) -> dict[str, int]:
    """Start the daemon's HTTP side where `feed` says, ask `path` once with each Host header,
    stop: the status of each answer."""

    def fetch() -> dict[str, int]:
        found = {}
        for host in hosts:
            connection = http.client.HTTPConnection("127.0.0.1", feed.port, timeout=5)
            try:
                connection.request("GET", path, headers={"Host": host})
                answer = connection.getresponse()
                answer.read()
                found[host] = answer.status
            finally:
                connection.close()
        return found

    return served(feed, fetch)


@pytest.mark.parametrize("path", ["/healthz", "/metrics"])
def test_health_and_metrics_answer_only_requests_addressed_here(tmp_path: Path, path: str) -> None:
    """No token guards them: a web page that resolves its own name to 127.0.0.1 (DNS
    rebinding) gets the 404 of an unknown address; an IP address, localhost and the public
    URL's host are answered."""
    port = free_port()
    config = f'[feed]\nlisten = "127.0.0.1:{port}"\npublic_url = "https://cal.example.net"\n'
    feed = feed_of(config, tmp_path)
    here = [f"127.0.0.1:{port}", "[::1]", f"localhost:{port}", "LOCALHOST", "cal.example.net"]
    away = ["attacker.example", f"attacker.example:{port}", "127.0.0.1.attacker.example", ""]
    found = statuses_by_host(feed, here + away, path)
    assert found == {**dict.fromkeys(here, 200), **dict.fromkeys(away, 404)}


@pytest.mark.slow  # a daemon in a subprocess: about 3 s
def test_a_port_already_taken_exits_69_naming_the_address_and_the_key(home: Path) -> None:
    """Another process listens on the feed's port: `followupd run` says so, no traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        listen = f"127.0.0.1:{taken.getsockname()[1]}"
        path = home / "followupd.toml"
        path.write_text(MINIMAL_CONFIG + f'[feed]\nlisten = "{listen}"\n', encoding="utf-8")
        result = followupd(home, "run")
    assert result.returncode == 69, result
    assert (
        f"followupd: cannot listen on {listen} ([feed] listen in {path}): "
        "address already in use — is another followupd running?"
    ) in result.stderr
    assert "Traceback" not in result.stderr
    assert "unexpected error" not in result.stderr
