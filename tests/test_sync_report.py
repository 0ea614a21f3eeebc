"""`sync`'s report into a pipe: written without rich when it can be, byte for byte as rich would."""

from __future__ import annotations

from datetime import date

import pytest

from followupd.cli import plain_table, render
from followupd.sources.caldav.read_back import ReadBack
from followupd.sources.caldav.sync import CalendarReport, SyncReport

URL = "http://127.0.0.1:5232/claire/missions/"


def reports() -> list[SyncReport]:
    """A sync after one change, a first one, one that skipped and noted, one read nothing."""
    incremental = SyncReport([CalendarReport("Missions", "incremental", 1, 0)], 0, 1)
    first = SyncReport(
        [CalendarReport("Missions", "full", 1000, 0), CalendarReport("Perso", "full", 12, 3)],
        missions_created=180,
        meetings=412,
        user=ReadBack(["k1"], ["k2", "k3"], [], [("F-2026-041", date(2026, 12, 1))]),
    )
    skipped = SyncReport(
        [CalendarReport("Missions", "etag comparison", 2, 1)],
        skipped=[(f"{URL}A.ics", "mission event 'Audit': line 4: unknown field 'contarct'")],
        notices=["calendar 'Perso' not synced: connection refused; tried again next time"],
    )
    short = SyncReport(notices=["mission 'audit-12': ends before it starts"])
    many = SyncReport(
        [CalendarReport("Missions", "incremental")],
        user=ReadBack(promised=[(f"F-2026-{n:03}", date(2026, 12, n % 28 + 1)) for n in range(9)]),
    )
    return [incremental, first, skipped, short, many, SyncReport()]


@pytest.mark.parametrize("report", reports())
def test_the_report_into_a_pipe_is_what_rich_prints(
    report: SyncReport, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plain_table, "plain_pipe", lambda: False)
    render.print_sync_report(report)
    by_rich = capsys.readouterr().out
    monkeypatch.setattr(plain_table, "plain_pipe", lambda: True)
    render.print_sync_report(report)
    assert capsys.readouterr().out == by_rich
    assert by_rich.splitlines()[0].startswith("calendar ┃ sync")


def test_a_report_after_one_change_is_written_without_rich(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_rich() -> None:
        raise AssertionError("printed by rich")

    monkeypatch.setattr(plain_table, "plain_pipe", lambda: True)
    monkeypatch.setattr(render, "console", no_rich)
    render.print_sync_report(reports()[0])
    assert capsys.readouterr().out == (
        "calendar ┃ sync        ┃ fetched ┃ deleted\n"
        "━━━━━━━━━╇━━━━━━━━━━━━━╇━━━━━━━━━╇━━━━━━━━\n"
        "Missions │ incremental │ 1       │ 0      \n"
        "missions: 0 created, 1 updated; meetings recorded: 0; in your calendar, followupd's "
        "items completed: 0, cancelled or deleted: 0, put off: 0\n"
    )
