"""What every command of the command line needs: the config, the store, the owners, time.

The command line is the only place below the service that reads the clock.
The config's models and the store are imported when a command first asks for
them, not with this module: `followupd --version` needs neither.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import click

from followupd.cli import collector
from followupd.config.discovery import find_config

if TYPE_CHECKING:  # imported where used: pydantic and SQLAlchemy, not for `--version`
    from sqlalchemy.orm import Session

    from followupd.config.owners import OwnerEntry
    from followupd.config.settings import Settings
    from followupd.store.db import Store


@dataclass
class App:
    """What every command needs: where the config is, and the settings once loaded."""

    config_option: Path | None
    debug: bool
    # main() for this process's own command line, not inside a longer one (the tests):
    # it may keep what outlives the command (compiled templates)
    own_process: bool = False
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    _settings: Settings | None = None

    @property
    def config_path(self) -> Path:
        return find_config(self.config_option, self.environ, Path.cwd())

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            with self.lasting():
                from followupd.config.load import load_settings  # pydantic: see the docstring
                from followupd.templates import cache_place

                self._settings = load_settings(self.config_path, self.environ)
            if self.own_process:
                where = self._settings.state_dir / cache_place.CACHE_DIRECTORY
                cache_place.keep_in(where)
        return self._settings

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.settings.owner.timezone)

    def owners(self, key: str | None) -> tuple[OwnerEntry, ...]:
        """The owner keyed `key` (an --owner option), or every owner for None."""
        if key is None:
            return self.settings.owners
        found = [owner for owner in self.settings.owners if owner.key == key]
        if not found:
            keys = ", ".join(owner.key for owner in self.settings.owners)
            raise click.BadParameter(f"no owner {key!r} in the config (owners: {keys})")
        return tuple(found)

    @property
    def owner_keys(self) -> list[str]:
        return [owner.key for owner in self.settings.owners]

    @property
    def shown_owners(self) -> Settings | None:
        """The settings when tables should say whose a row is (several owners); else None."""
        return self.settings if self.settings.several_owners else None

    def lasting(self) -> AbstractContextManager[None]:
        """Around what a command imports (and keeps) as it runs: no garbage collection
        while it does, what it made frozen (followupd.cli.collector); in this process's
        own command line only."""
        return collector.lasting() if self.own_process else nullcontext()

    def store(self, *, migrate: bool = False) -> Store:
        url = self.settings.database.sqlalchemy_url(self.environ)
        with self.lasting():
            from followupd.store.db import Store  # SQLAlchemy: see the module's docstring

            store = Store.open(url, create=migrate)
            if self.own_process:  # the models' mappers, set up by the first query otherwise
                from sqlalchemy.orm import configure_mappers

                configure_mappers()
        if not migrate:
            try:
                store.require_current()
            except BaseException:
                store.close()
                raise
        return store

    @contextmanager
    def session(self, *, commit: bool = True) -> Iterator[Session]:
        """A session on a current schema, committed at the end of the block (or rolled back).

        A committed change is announced, so that daemons sharing a PostgreSQL
        database evaluate it now rather than at their next interval.
        """
        from followupd.store.coordination import CHANGED, announce  # as Store, in store()

        store = self.store()
        try:
            if commit:
                with store.session() as session:
                    yield session
                    announce(session, CHANGED)
            else:
                with store.sessions() as session:
                    try:
                        yield session
                    finally:
                        session.rollback()
        finally:
            store.close()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def instant(self, text: str | None) -> datetime:
        """An ISO instant from the user, read in the owner's zone; now when absent."""
        if text is None:
            return self.now()
        from followupd.sources.files.instants import parse_instant

        try:
            return parse_instant(text, self.zone)
        except ValueError as error:
            raise click.BadParameter(str(error)) from None

    def day(self, text: str | None) -> date:
        if text is None:
            return self.now().astimezone(self.zone).date()
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise click.BadParameter(f"expected a date like 2026-11-30 (got {text!r})") from None


pass_app = click.make_pass_decorator(App)


def words(names: type[StrEnum]) -> list[str]:
    """The words of a closed set as click choices (click would offer an enum's member names)."""
    return [name.value for name in names]
