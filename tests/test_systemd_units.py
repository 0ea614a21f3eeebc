"""The systemd units of systemd/: hardened, valid to systemd, and set up as the daemon expects.

`systemd-analyze` (Debian's package systemd) does the checking offline: no systemd needs to
be running. `verify` also checks that each command exists, so it runs against stand-in
executables: where the package's command is depends on how it was installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from followupd.config import config_candidates, user_config_path
from followupd.errors import EX_CONFIG

UNITS = Path(__file__).resolve().parent.parent / "systemd"
SYSTEM_UNIT = UNITS / "followupd.service"
USER_UNIT = UNITS / "followupd-user.service"
EXAMPLE_CONFIG = (
    Path(__file__).resolve().parent.parent / "followupd" / "resources" / "followupd.example.toml"
)
MAX_EXPOSURE = 2.0
# What `systemd-analyze security` still flags in the system unit, each on purpose.
ACCEPTED_EXPOSURES = {
    # The daemon needs the network (SMTP, CalDAV, DNS, the feed) and its own AF_UNIX
    # sockets (sd_notify, the journal).
    "PrivateNetwork=",
    "RestrictAddressFamilies=~AF_(INET|INET6)",
    "RestrictAddressFamilies=~AF_UNIX",
    # Servers found by name: no fixed allow list of addresses fits (see the unit).
    "IPAddressDeny=",
    # ProtectClock= itself adds a read-only char-rtc to the device ACL.
    "DeviceAllow=",
    # A separate root file system is for images, not for a pip-installed package.
    "RootDirectory=/RootImage=",
}
# Settings that an unprivileged user manager cannot apply: never (ProtectProc=, User=, the
# cgroup BPF ones...), or only with PrivateUsers=yes, in a user namespace of its own, which
# many systems refuse to unprivileged users (Ubuntu since 23.10): the start would fail.
USER_MANAGER_CANNOT = {
    "AmbientCapabilities",
    "CapabilityBoundingSet",
    "DevicePolicy",
    "DynamicUser",
    "IPAddressAllow",
    "IPAddressDeny",
    "InaccessiblePaths",
    "PrivateDevices",
    "PrivateIPC",
    "PrivateMounts",
    "PrivateNetwork",
    "PrivateTmp",
    "PrivateUsers",
    "ProcSubset",
    "ProtectClock",
    "ProtectControlGroups",
    "ProtectHome",
    "ProtectHostname",
    "ProtectKernelLogs",
    "ProtectKernelModules",
    "ProtectKernelTunables",
    "ProtectProc",
    "ProtectSystem",
    "ReadOnlyPaths",
    "ReadWritePaths",
    "RemoveIPC",
    "TemporaryFileSystem",
    "User",
}

Unit = dict[str, dict[str, list[str]]]


def parse_unit(text: str) -> Unit:
    """Sections, each key with its values in order (keys such as LoadCredential= repeat)."""
    unit: Unit = {}
    section: dict[str, list[str]] | None = None
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if not line or line.startswith(("#", ";")):
            continue
        if line.endswith("\\"):
            pending = line[:-1].rstrip() + " "
            continue
        if line.startswith("[") and line.endswith("]"):
            section = unit.setdefault(line[1:-1], {})
            continue
        key, equals, value = line.partition("=")
        assert equals, f"not KEY=VALUE: {line!r}"
        assert section is not None, f"setting before any section: {line!r}"
        section.setdefault(key.strip(), []).append(value.strip())
    return unit


def service_of(path: Path) -> dict[str, list[str]]:
    return parse_unit(path.read_text(encoding="utf-8"))["Service"]


def one(settings: Mapping[str, list[str]], key: str) -> str:
    values = settings.get(key, [])
    assert len(values) == 1, f"{key}= should be set once, is {values}"
    return values[0]


def environment(settings: Mapping[str, list[str]]) -> dict[str, str]:
    pairs = (
        item.partition("=") for value in settings.get("Environment", []) for item in value.split()
    )
    return {name: value for name, _, value in pairs}


def executable(command_line: str) -> str:
    """The program of ExecStart= and the like, without the prefixes (-, @, +, !, :)."""
    return command_line.lstrip("-@+!:").split()[0]


def systemd_analyze(
    *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    program = shutil.which("systemd-analyze")
    assert program is not None, "systemd-analyze is missing: install Debian's package systemd"
    return subprocess.run(
        [program, "--no-pager", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SYSTEMD_COLORS": "0", **(env or {})},
        timeout=60,
        check=False,
    )


def stand_in(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    path.chmod(0o755)


# -- the system unit ----------------------------------------------------------------------


def test_system_unit_exposure_level_is_low() -> None:
    result = systemd_analyze("security", "--offline=yes", str(SYSTEM_UNIT))
    assert result.returncode == 0, result.stderr
    found = re.search(r"Overall exposure level for followupd\.service: (\d+\.\d+)", result.stdout)
    assert found is not None, result.stdout
    assert float(found.group(1)) <= MAX_EXPOSURE, result.stdout


def test_system_unit_exposes_only_what_the_daemon_needs() -> None:
    result = systemd_analyze("security", "--offline=yes", "--json=short", str(SYSTEM_UNIT))
    assert result.returncode == 0, result.stderr
    checks = json.loads(result.stdout)
    flagged = {check["name"] for check in checks if check["set"] is False}
    assert flagged <= ACCEPTED_EXPOSURES, f"newly flagged: {sorted(flagged - ACCEPTED_EXPOSURES)}"


def test_system_unit_verifies(tmp_path: Path) -> None:
    """`systemd-analyze verify` in a root of its own, with the distribution's units."""
    root = tmp_path / "root"
    vendor_units = next(
        (p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")) if p.is_dir()),
        None,
    )
    assert vendor_units is not None, "no /usr/lib/systemd/system: install Debian's package systemd"
    shutil.copytree(vendor_units, root / "usr" / "lib" / "systemd" / "system", symlinks=True)
    (root / "etc" / "systemd" / "system").mkdir(parents=True)
    shutil.copy(SYSTEM_UNIT, root / "etc" / "systemd" / "system" / "followupd.service")
    service = service_of(SYSTEM_UNIT)
    for key in ("ExecStart", "ExecReload"):
        stand_in(root / executable(one(service, key)).lstrip("/"))

    result = systemd_analyze("verify", "--man=no", f"--root={root}", "followupd.service")

    assert result.returncode == 0, result.stderr
    # Unknown keys and values that don't parse are only warned about, with status 0.
    assert result.stderr + result.stdout == ""


def test_system_unit_has_what_running_as_a_service_needs() -> None:
    unit = parse_unit(SYSTEM_UNIT.read_text(encoding="utf-8"))
    service = unit["Service"]
    expected = {
        "Type": "notify",
        "Restart": "on-failure",
        "DynamicUser": "yes",
        "StateDirectory": "followupd",
        "ConfigurationDirectory": "followupd",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "MemoryDenyWriteExecute": "yes",
        "CapabilityBoundingSet": "",
        "UMask": "0077",
        "ExecStart": "/usr/bin/followupd run",
        "ExecReload": "/bin/kill -HUP $MAINPID",
        "RestartPreventExitStatus": str(EX_CONFIG),
    }
    assert {key: one(service, key) for key in expected} == expected
    assert re.fullmatch(r"\d+s", one(service, "WatchdogSec"))
    assert re.fullmatch(r"\d+s", one(service, "TimeoutStopSec"))
    assert set(one(service, "RestrictAddressFamilies").split()) == {
        "AF_INET",
        "AF_INET6",
        "AF_UNIX",
    }
    filters = service["SystemCallFilter"]
    assert "@system-service" in filters
    assert set(" ".join(f for f in filters if f.startswith("~")).lstrip("~").split()) >= {
        "@privileged",
        "@resources",
    }
    credentials = dict(value.split(":", 1) for value in service["LoadCredential"])
    assert credentials == {
        "smtp": "/etc/followupd/smtp-password",
        "caldav": "/etc/followupd/caldav-password",
    }
    assert unit["Install"] == {"WantedBy": ["multi-user.target"]}


def test_system_unit_reads_the_config_the_command_line_finds() -> None:
    """So that `followupd check`, run by hand without $FOLLOWUPD_CONFIG, reads the same file."""
    config = environment(service_of(SYSTEM_UNIT))["FOLLOWUPD_CONFIG"]
    assert config_candidates({}, Path("/"))[-1] == Path(config)


def test_credentials_are_those_the_example_config_names() -> None:
    """Every /run/credentials/followupd.service/ID of the example config is loaded by the unit.

    Commented-out LoadCredential= lines count: a server one may not use (PostgreSQL).
    """
    named = set(
        re.findall(
            r"/run/credentials/followupd\.service/([\w.-]+)",
            EXAMPLE_CONFIG.read_text(encoding="utf-8"),
        )
    )
    text = SYSTEM_UNIT.read_text(encoding="utf-8")
    loaded = set(re.findall(r"^#?LoadCredential=([\w.-]+):", text, flags=re.MULTILINE))
    assert {"smtp", "caldav"} <= named <= loaded


# -- the user unit ------------------------------------------------------------------------


def test_user_unit_verifies(tmp_path: Path) -> None:
    """`systemd-analyze --user verify`, for a user whose home is a temporary directory.

    A user manager cannot work in another root, so the commands other than followupd's are
    looked for on this machine: /bin/kill is Debian's package procps.
    """
    home = tmp_path / "home"
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    units = home / ".config" / "systemd" / "user"
    units.mkdir(parents=True)
    installed = units / "followupd.service"
    shutil.copy(USER_UNIT, installed)
    service = service_of(USER_UNIT)
    start = executable(one(service, "ExecStart"))
    assert start.startswith("%h/"), start
    stand_in(home / start.removeprefix("%h/"))
    kill = executable(one(service, "ExecReload"))
    assert Path(kill).is_file(), f"{kill} is missing: install Debian's package procps"

    env = {
        "HOME": str(home),
        "XDG_RUNTIME_DIR": str(runtime),
        "XDG_CONFIG_HOME": str(home / ".config"),
    }
    result = systemd_analyze("--user", "verify", "--man=no", str(installed), env=env)

    assert result.returncode == 0, result.stderr
    assert result.stderr + result.stdout == ""


def test_user_unit_has_nothing_an_unprivileged_user_manager_cannot_apply() -> None:
    assert sorted(USER_MANAGER_CANNOT.intersection(service_of(USER_UNIT))) == []


def test_user_unit_has_what_running_as_a_service_needs() -> None:
    unit = parse_unit(USER_UNIT.read_text(encoding="utf-8"))
    service = unit["Service"]
    expected = {
        "Type": "notify",
        "Restart": "on-failure",
        "NoNewPrivileges": "yes",
        "MemoryDenyWriteExecute": "yes",
        "UMask": "0077",
        "ExecStart": "%h/.local/bin/followupd run",
        "ExecReload": "/bin/kill -HUP $MAINPID",
        "RestartPreventExitStatus": str(EX_CONFIG),
    }
    assert {key: one(service, key) for key in expected} == expected
    assert re.fullmatch(r"\d+s", one(service, "WatchdogSec"))
    assert set(one(service, "RestrictAddressFamilies").split()) == {
        "AF_INET",
        "AF_INET6",
        "AF_UNIX",
    }
    assert "@system-service" in service["SystemCallFilter"]
    # Before systemd 254, StateDirectory= of a user unit is under ~/.config: let the daemon
    # use $XDG_STATE_HOME/followupd, as the command line does.
    assert "StateDirectory" not in service
    assert unit["Install"] == {"WantedBy": ["default.target"]}


def test_user_unit_reads_the_users_config() -> None:
    """%E is $XDG_CONFIG_HOME: the file `followupd init` writes and the command line reads."""
    config = environment(service_of(USER_UNIT))["FOLLOWUPD_CONFIG"]
    assert user_config_path({"XDG_CONFIG_HOME": "%E"}) == Path(config)


def test_parse_unit_keeps_repeated_keys_and_joins_continued_lines() -> None:
    text = "# comment\n[Service]\nA=1\n; other comment\nA=2 \\\n  3\nB=\n"
    assert parse_unit(text) == {"Service": {"A": ["1", "2 3"], "B": [""]}}
