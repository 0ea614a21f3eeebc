"""Running `followupd` as the user would, in subprocesses: the helpers the daemon tests share."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays

from followupd.config.load import DATABASE_URL_VARIABLE
from tests.davserver import PASSWORD, PASSWORD_VARIABLE

ZONES = ("Europe/Paris", "America/New_York", "Asia/Tokyo", "Australia/Sydney",
         "America/Los_Angeles", "Asia/Kolkata")  # fmt: skip
COUNTRIES = ("FR", "GB", "US", "JP", "DE", "CA")
DISABLED = ("deposit_due", "contract_missing", "escalate_by_phone", "client_not_informed",
            "status_update_due", "checkpoint_meeting", "mission_closeout",
            "open_ended_mission", "new_year_greetings")  # fmt: skip


@dataclass
class Setting:
    zone: ZoneInfo
    country: str
    opening: datetime  # the send window's next opening, aware

    @property
    def today(self) -> date:
        return self.opening.date()


def daytime_setting() -> Setting:
    """A zone where the next minute is daytime today, and a country with no holiday today."""
    now = datetime.now(UTC)
    for name in ZONES:
        zone = ZoneInfo(name)
        local = (now + timedelta(seconds=8)).astimezone(zone)
        opening = (local + timedelta(minutes=1)).replace(second=0, microsecond=0)
        if 7 <= opening.hour <= 21 and opening.date() == local.date():
            for country in COUNTRIES:
                if opening.date() not in holidays.country_holidays(country, years=opening.year):
                    return Setting(zone, country, opening)
    raise AssertionError("no zone is in daytime: impossible on Earth")


def followupd(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "followupd", "--config", str(home / "followupd.toml"), *args],
        env=environment(home), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def environment(home: Path) -> dict[str, str]:
    """Ours, minus what could point followupd elsewhere; the test's database is kept."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FOLLOWUPD", "XDG_"))}
    env.pop("STATE_DIRECTORY", None)
    if DATABASE_URL_VARIABLE in os.environ:  # set by the `home` fixture on PostgreSQL
        env[DATABASE_URL_VARIABLE] = os.environ[DATABASE_URL_VARIABLE]
    return {**env, "HOME": str(home), PASSWORD_VARIABLE: PASSWORD}


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def healthy(port: int) -> bool:
    try:
        return get(f"http://127.0.0.1:{port}/healthz")[0] == 200
    except urllib.error.URLError:  # not listening yet
        return False


def wait_for(condition: object, timeout: float, step: float = 0.05) -> float:
    """Poll `condition` until it is true; the time.time() it became true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return time.time()
        time.sleep(step)
    raise AssertionError(f"not within {timeout} s")


def wait_healthy(process: subprocess.Popen[str], port: int, timeout: float = 20) -> None:
    """Wait for the daemon's /healthz to say 200; if it does not, fail with what it said."""
    try:
        wait_for(lambda: healthy(port), timeout=timeout)
    except AssertionError:
        try:
            said = get(f"http://127.0.0.1:{port}/healthz")[1].decode()
        except urllib.error.URLError as error:
            said = f"no answer: {error}"
        process.terminate()
        output, _ = process.communicate(timeout=30)
        raise AssertionError(f"not healthy in {timeout} s: {said}\n{output}") from None


def vdirsyncer_subscribe(url: str, workdir: Path) -> Path:
    """Subscribe vdirsyncer (its ``http`` storage, a real client) to the feed at `url`, sync
    it into a folder of `workdir` with no error, and return that folder of .ics files."""
    folder = workdir / "subscribed"
    folder.mkdir()
    config = workdir / "vdirsyncer.conf"
    config.write_text(
        f'[general]\nstatus_path = "{workdir / "status"}"\n\n'
        '[pair followupd]\na = "feed"\nb = "local"\ncollections = null\n'
        'conflict_resolution = "a wins"\n\n'
        f'[storage feed]\ntype = "http"\nurl = "{url}"\n\n'
        f'[storage local]\ntype = "filesystem"\npath = "{folder}"\nfileext = ".ics"\n',
        encoding="utf-8",
    )
    for command in ("discover", "sync"):
        done = subprocess.run(
            ["vdirsyncer", "-c", str(config), command],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert "error" not in (done.stdout + done.stderr).lower(), done.stderr
    return folder
