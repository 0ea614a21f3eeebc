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

from followupd.config.discovery import config_candidates, state_directory, user_config_path
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
USER_SANDBOX = UNITS / "followupd-user-sandbox.conf"
MAX_USER_EXPOSURE = 5.2
MAX_USER_SANDBOXED_EXPOSURE = 2.0
# Settings a user manager never applies: for system services only (User=,
# RemoveIPC=), cgroup BPF programs, which need privileges (Device*=, IPAddress*=),
# or procfs mount options, which need a PID namespace (ProtectProc=, ProcSubset=:
# checked under a user manager, they change nothing, but the score).
USER_MANAGER_NEVER = {"User", "DynamicUser", "RemoveIPC", "DevicePolicy", "DeviceAllow",
                      "IPAddressAllow", "IPAddressDeny", "ProtectProc", "ProcSubset"}  # fmt: skip
USER_MANAGER_NEVER_FLAGS = {"User=/DynamicUser=", "DeviceAllow=", "IPAddressDeny=", "ProtectProc=",
                            "ProcSubset=", "ProtectHome="}  # fmt: skip
# Settings that a user manager applies only in a user namespace of the service's own,
# and without one (Ubuntu since 23.10 refuses them to unprivileged users) refuse to
# start the service: 217/USER for PrivateUsers=yes, 218/CAPABILITIES for the ones
# that drop capabilities. In followupd-user-sandbox.conf, never in the unit.
NEED_A_USER_NAMESPACE_TO_START = {
    "PrivateUsers",
    "CapabilityBoundingSet",
    "PrivateDevices",
    "ProtectClock",
    "ProtectKernelModules",
    "ProtectKernelLogs",
}
# What `systemd-analyze --user security` still flags with the sandbox drop-in: as for
# the system unit, and a read-only home (the program and its config live there).
ACCEPTED_USER_EXPOSURES = (ACCEPTED_EXPOSURES - {"DeviceAllow="}) | USER_MANAGER_NEVER_FLAGS
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


def user_home(tmp_path: Path, *, sandbox: bool) -> tuple[Path, dict[str, str]]:
    """A user whose home is a temporary directory, the unit installed as the README says
    (with the sandbox drop-in, or not); the unit's path and the environment to analyze it.

    A user manager cannot work in another root, so the commands other than followupd's are
    looked for on this machine: /bin/kill is Debian's package procps, /bin/mkdir coreutils.
    """
    home = tmp_path / "home"
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700, parents=True)
    units = home / ".config" / "systemd" / "user"
    units.mkdir(parents=True)
    installed = units / "followupd.service"
    shutil.copy(USER_UNIT, installed)
    if sandbox:
        (units / "followupd.service.d").mkdir()
        shutil.copy(USER_SANDBOX, units / "followupd.service.d" / "sandbox.conf")
    service = service_of(USER_UNIT)
    start = executable(one(service, "ExecStart"))
    assert start.startswith("%h/"), start
    stand_in(home / start.removeprefix("%h/"))
    for key in ("ExecReload", "ExecStartPre"):
        command = executable(one(service, key))
        assert Path(command).is_file(), f"{command} is missing on this machine"
    env = {
        "HOME": str(home),
        "XDG_RUNTIME_DIR": str(runtime),
        "XDG_CONFIG_HOME": str(home / ".config"),
    }
    return installed, env


def user_exposure(tmp_path: Path, *, sandbox: bool) -> tuple[float, set[str]]:
    """`systemd-analyze --user security --offline=yes`: the level, and the checks failed."""
    _, env = user_home(tmp_path, sandbox=sandbox)
    args = ("--user", "security", "--offline=yes", "followupd.service")
    result = systemd_analyze(*args, env=env)
    assert result.returncode == 0, result.stderr
    found = re.search(r"Overall exposure level for followupd\.service: (\d+\.\d+)", result.stdout)
    assert found is not None, result.stdout
    checks = json.loads(systemd_analyze(*args[:-1], "--json=short", args[-1], env=env).stdout)
    return float(found.group(1)), {check["name"] for check in checks if check["set"] is False}


def test_user_unit_exposure_level(tmp_path: Path) -> None:
    """Without user namespaces: what starts everywhere. Most of what is left are
    capabilities the analysis counts as if the service ran as root (no User=)."""
    level, flagged = user_exposure(tmp_path, sandbox=False)
    assert level <= MAX_USER_EXPOSURE, flagged
    applied = {"NoNewPrivileges=", "KeyringMode=", "ProtectSystem=", "PrivateTmp=",
               "ProtectKernelTunables=", "ProtectControlGroups=", "ProtectHostname=",
               "PrivateMounts=", "MemoryDenyWriteExecute=", "LockPersonality="}  # fmt: skip
    assert not flagged & applied


def test_user_unit_with_the_sandbox_drop_in_exposes_only_what_the_daemon_needs(
    tmp_path: Path,
) -> None:
    level, flagged = user_exposure(tmp_path, sandbox=True)
    assert level <= MAX_USER_SANDBOXED_EXPOSURE, flagged
    accepted = ACCEPTED_USER_EXPOSURES
    assert flagged <= accepted, f"newly flagged: {sorted(flagged - accepted)}"


def test_user_unit_verifies(tmp_path: Path) -> None:
    """`systemd-analyze --user verify`, with the sandbox drop-in and without."""
    for sandbox in (False, True):
        installed, env = user_home(tmp_path / str(sandbox), sandbox=sandbox)
        result = systemd_analyze("--user", "verify", "--man=no", str(installed), env=env)
        assert result.returncode == 0, result.stderr
        assert result.stderr + result.stdout == ""


def test_user_unit_starts_where_user_namespaces_are_refused() -> None:
    """Nothing a user manager never applies, nor what needs a user namespace to start."""
    service = service_of(USER_UNIT)
    assert sorted(USER_MANAGER_NEVER.intersection(service)) == []
    assert sorted(NEED_A_USER_NAMESPACE_TO_START.intersection(service)) == []


def test_user_sandbox_drop_in_holds_what_needs_a_user_namespace() -> None:
    unit = parse_unit(USER_SANDBOX.read_text(encoding="utf-8"))
    assert list(unit) == ["Service"]
    assert set(unit["Service"]) == NEED_A_USER_NAMESPACE_TO_START
    assert one(unit["Service"], "PrivateUsers") == "yes"
    assert one(unit["Service"], "CapabilityBoundingSet") == ""


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
    # All read-only but that directory, made before the sandbox needs it
    state = str(state_directory({"HOME": "%h"}))
    assert {key: one(service, key) for key in ("ProtectSystem", "ProtectHome")} == {
        "ProtectSystem": "strict",
        "ProtectHome": "read-only",
    }
    assert one(service, "ReadWritePaths") == state
    assert one(service, "ExecStartPre").startswith("+") and one(service, "ExecStartPre").endswith(
        f"mkdir -p -m 0700 {state}"
    )
    assert unit["Install"] == {"WantedBy": ["default.target"]}


def test_user_unit_reads_the_users_config() -> None:
    """%E is $XDG_CONFIG_HOME: the file `followupd init` writes and the command line reads."""
    config = environment(service_of(USER_UNIT))["FOLLOWUPD_CONFIG"]
    assert user_config_path({"XDG_CONFIG_HOME": "%E"}) == Path(config)


def test_parse_unit_keeps_repeated_keys_and_joins_continued_lines() -> None:
    text = "# comment\n[Service]\nA=1\n; other comment\nA=2 \\\n  3\nB=\n"
    assert parse_unit(text) == {"Service": {"A": ["1", "2 3"], "B": [""]}}
