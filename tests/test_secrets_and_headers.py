"""No header injection through data, and no secret in any output, --debug included."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from followupd.errors import DataError
from followupd.sources.files.importer import import_files
from followupd.store.db import Store
from tests.conftest import MINIMAL_CONFIG, RunCli
from tests.smtpserver import free_port

SECRET = "s3cr3t-Hunter2-do-not-print"


def test_a_name_with_a_line_break_cannot_reach_a_header(store: Store, tmp_path: Path) -> None:
    data = {
        "clients": [{"key": "acme", "name": "ACME"}],
        "contacts": [{"key": "j", "client": "acme", "name": "Jeanne\r\nBcc: victim@example.com",
                      "email": "j@acme.example"}],
    }  # fmt: skip
    path = tmp_path / "data.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(DataError, match="line breaks"):
        import_files(store, [path], ZoneInfo("Europe/Paris"))


@pytest.mark.slow
def test_the_smtp_password_appears_nowhere(
    cli: RunCli,
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("FOLLOWUPD_SMTP_PASSWORD", SECRET)
    config = home / "followupd.toml"
    config.write_text(
        MINIMAL_CONFIG
        + f'[smtp]\nhost = "127.0.0.1"\nport = {free_port()}\nsecurity = "starttls"\n'
        'username = "claire"\npassword_env = "FOLLOWUPD_SMTP_PASSWORD"\ntimeout_seconds = 2\n',
        encoding="utf-8",
    )
    caplog.set_level(logging.DEBUG)
    outputs = [cli("init", "--demo", "--today", "2026-11-22", "--debug")]
    outputs.append(cli("check", "--debug"))  # the server is down: 69
    outputs.append(cli("tick", "--now", "2026-11-23T10:00", "--debug", "--json"))
    assert outputs[1].code == 69
    assert outputs[2].code == 69, "deliveries must be retried"
    for result in outputs:
        assert SECRET not in result.out
        assert SECRET not in result.err
    assert SECRET not in caplog.text
    assert "FAILED" in outputs[1].out
