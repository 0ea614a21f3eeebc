"""Shared fixtures: a config, and stores on a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

from followupd.cli import main
from followupd.store.db import Store
from tests.davserver import PASSWORD, PASSWORD_VARIABLE, DavServer, dav_server
from tests.pgserver import throwaway_postgres

MINIMAL_CONFIG = """\
[owner]
name = "Claire Martin"
email = "claire@cabinet.example"
phone = "+33 6 00 00 00 00"
"""
_database_numbers = itertools.count()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """One throwaway PostgreSQL server for the whole run (loopback only)."""
    with throwaway_postgres() as url:
        yield url


def _fresh_postgres_database(server_url: str) -> URL:
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    name = f"followupd_{os.getpid()}_{next(_database_numbers)}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server_url).set(database=name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> URL:
    """An empty database of each engine."""
    if request.param == "sqlite":
        return make_url(f"sqlite:///{tmp_path / 'followupd.db'}")
    return _fresh_postgres_database(request.getfixturevalue("postgres_url"))


@pytest.fixture
def store(database_url: URL) -> Iterator[Store]:
    """A store with the current schema, on each engine."""
    opened = Store.open(database_url)
    opened.upgrade()
    yield opened
    opened.close()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty HOME and working directory, with no followupd variables set."""
    home = tmp_path / "home"
    home.mkdir()
    for name in ("FOLLOWUPD_CONFIG", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "STATE_DIRECTORY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(home)
    return home


class Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def __repr__(self) -> str:
        return f"<exit {self.code}\nstdout:\n{self.out}\nstderr:\n{self.err}>"


class RunCli(Protocol):
    def __call__(self, *args: str | Path) -> Result: ...


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> RunCli:
    """Run the command line in-process: ``cli("missions", "--config", path)``."""

    def run(*args: str | Path) -> Result:
        capsys.readouterr()
        try:
            main([str(arg) for arg in args])
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        else:
            code = 0
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def dav(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DavServer]:
    """A real CalDAV server (Radicale) on a free loopback port; its password in the environment."""
    monkeypatch.setenv(PASSWORD_VARIABLE, PASSWORD)
    with dav_server(tmp_path / "radicale") as server:
        yield server
