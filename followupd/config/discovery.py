"""Where the config file is: ``--config``, ``$FOLLOWUPD_CONFIG``, then the usual places.

The state directory (database, feed tokens) is found the same way: systemd's
``$STATE_DIRECTORY``, else the XDG state home.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from followupd.errors import ConfigError, Problem

CONFIG_FILE_NAME = "followupd.toml"


def _home(environ: Mapping[str, str]) -> Path:
    return Path(environ["HOME"]) if environ.get("HOME") else Path.home()


def user_config_path(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_CONFIG_HOME") or str(_home(environ) / ".config")
    return Path(base) / "followupd" / "config.toml"


def config_candidates(environ: Mapping[str, str], cwd: Path) -> list[Path]:
    """Where the config is looked for, in order, after ``--config`` (README, Configuration)."""
    candidates = [cwd / CONFIG_FILE_NAME, user_config_path(environ)]
    candidates.append(Path("/etc/followupd/config.toml"))
    return candidates


def find_config(explicit: Path | None, environ: Mapping[str, str], cwd: Path) -> Path:
    if explicit is not None:
        return explicit
    if environ.get("FOLLOWUPD_CONFIG"):
        return Path(environ["FOLLOWUPD_CONFIG"])
    candidates = config_candidates(environ, cwd)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(path) for path in candidates)
    message = f"no config file found (looked at {looked}); run `followupd init` to write one"
    raise ConfigError([Problem(candidates[0], message)])


def config_path_for_init(explicit: Path | None, environ: Mapping[str, str], cwd: Path) -> Path:
    """Where `init` writes: the config that would be read, else the user's config path."""
    try:
        return find_config(explicit, environ, cwd)
    except ConfigError:
        return user_config_path(environ)


def state_directory(environ: Mapping[str, str]) -> Path:
    """``$STATE_DIRECTORY`` (systemd), else the XDG state home."""
    if environ.get("STATE_DIRECTORY"):
        return Path(environ["STATE_DIRECTORY"].split(":")[0])
    base = environ.get("XDG_STATE_HOME") or str(_home(environ) / ".local" / "state")
    return Path(base) / "followupd"
