"""The feed put together from each item's bytes: the same document as icalendar's, made faster."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar
from icalendar.parser.content_line import Contentline
from sqlalchemy import update

import tests.bench.evaluate as shaped
from followupd.channels.calendar import ical
from followupd.channels.feed.build import (
    ORIGINS,
    REFRESH,
    Feed,
    FeedCache,
    build_feed,
    feed_source,
    items_of,
)
from followupd.channels.feed.components import Components, folded
from followupd.config.load import parse_settings
from followupd.domain.states import CalendarState
from followupd.engine.evaluation import evaluate
from followupd.rules.registry import enabled_rules
from followupd.store.db import Store
from followupd.store.models import FollowUp

PARIS = ZoneInfo("Europe/Paris")
PDF_TYPE = "application/pdf"
PDF = bytes(range(256)) * 300  # 76,800 octets: a base64 line of over 100,000 characters


def icalendars(items: list[ical.CalendarItem], zone: ZoneInfo, name: str) -> bytes:
    """The feed as icalendar writes it: every component in one calendar, then ``to_ical``."""
    days = [item.due_at.date() for item in items]
    span = (min(days) - ical.ZONE_SPAN, max(days) + ical.ZONE_SPAN)
    parts = [ical.component(item, zone) for item in items]
    calendar = ical.calendar_of(parts, span, name=name)
    calendar.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", "PT1H")
    return bytes(calendar.to_ical())


def items() -> list[ical.CalendarItem]:
    due = datetime(2026, 12, 7, 8, tzinfo=UTC)
    task = ical.CalendarItem(
        key="invoice_due:F-1:call", uid="f-1@followupd", rule="invoice_due", step="call",
        summary="Appeler Durand & Fils ; facture F-1", description="Relancer\\n, « 1 200,00 € »",
        due_at=due, stamp=due - timedelta(days=1), contact_name="Zoé Müller",
        contact_phone="+33 6 12 34 56 78",
    )  # fmt: skip
    meeting = ical.CalendarItem(
        key="checkpoint_meeting:m1", uid="m1@followupd", rule="checkpoint_meeting", step="x",
        summary="Point d'étape", description="Ordre du jour :\n- livrables\n- planning" * 9,
        due_at=due + timedelta(days=3), stamp=due,
    )  # fmt: skip
    return [
        task,
        meeting,
        replace(meeting, uid="m2@followupd", status=CalendarState.CANCELLED, sequence=3),
        replace(task, uid="f-2@followupd", status=CalendarState.COMPLETED,
                completed_at=due + timedelta(hours=2)),
        replace(task, uid="f-3@followupd", rule="formal_notice", step="send",
                attachment=("mise-en-demeure-F-3.pdf", PDF)),
        replace(task, uid="f-4@followupd", summary="日本語の請求書 🧾 " * 12,
                description="^\\" * 80 + "é" * 80),
        replace(task, uid="f-5@followupd", rule="formal_notice", step="send",
                attachment=ical.FileLink("mise-en-demeure-F-3.pdf",
                                         "http://127.0.0.1:8731/feed/t/files/7/"
                                         "mise-en-demeure-F-3.pdf")),
    ]  # fmt: skip


@pytest.mark.parametrize(
    "text",
    [
        "",
        "SUMMARY:short",
        "X:" + "a" * 72,  # 74 octets: no fold
        "X:" + "a" * 73,  # 75: one
        "X:" + "a" * 146,
        "X:" + "a" * 200,
        "X:" + "a" * 71 + "\\n" + "b" * 80,  # a backslash where the line would be cut
        "X:" + "a" * 71 + "^n" + "b" * 80,
        "X:" + "\\" * 300,
        "X:" + "a" * 71 + "é" * 50,  # a two-octet character across the cut
        "X:" + "a" * 70 + "€" * 50,
        "X:" + "🧾" * 60 + "a",
        "X:" + ("é\\" * 100),
    ],
)
def test_a_line_is_folded_where_icalendar_folds_it(text: str) -> None:
    line = Contentline(text)  # type: ignore[no-untyped-call]
    assert folded(text) == line.to_ical()  # type: ignore[no-untyped-call]


def test_the_feed_is_icalendars_document_to_the_octet() -> None:
    mixed = items()
    for zone in (PARIS, ZoneInfo("America/New_York"), ZoneInfo("UTC")):
        built = build_feed(mixed, zone, "followupd — Zoé")
        assert built.body == icalendars(mixed, zone, "followupd — Zoé")
        assert built.count == len(mixed)
    parsed = Calendar.from_ical(build_feed(mixed, PARIS, "followupd").body)
    assert ical.attachment_of(parsed.todos[-3]) == ("mise-en-demeure-F-3.pdf", PDF)
    linked = parsed.todos[-1]["ATTACH"]
    assert str(linked) == "http://127.0.0.1:8731/feed/t/files/7/mise-en-demeure-F-3.pdf"
    assert dict(linked.params) == {"FILENAME": "mise-en-demeure-F-3.pdf", "FMTTYPE": PDF_TYPE}
    assert [part.name for part in parsed.subcomponents][:1] == ["VTIMEZONE"]


def test_a_build_after_a_change_makes_only_the_changed_items_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[str] = []
    component = ical.component

    def counted(item: ical.CalendarItem, zone: ZoneInfo) -> object:
        made.append(item.uid)
        return component(item, zone)

    monkeypatch.setattr(ical, "component", counted)  # the module the feed's builders call
    kept = Components()
    before = items()
    build_feed(before, PARIS, "followupd", kept)
    assert sorted(made) == sorted([item.uid for item in before] + [before[0].uid])  # + probe
    made.clear()
    after = [*before]
    after[1] = replace(after[1], summary="Point d'étape, déplacé", sequence=1)
    built = build_feed(after, PARIS, "followupd", kept)
    assert made == [after[1].uid, after[0].uid]  # the changed item only, then the probe
    assert built.body == icalendars(after, PARIS, "followupd")
    made.clear()
    london = ZoneInfo("Europe/London")
    built = build_feed(after, london, "followupd", kept)
    assert len(made) == len(after) + 1  # another zone: other times, every item made again
    assert built.body == icalendars(after, london, "followupd")


def test_the_items_of_unchanged_rows_are_kept_from_the_last_build(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = parse_settings(shaped.CONFIG, Path("t.toml"), {"HOME": tempfile.gettempdir()})
    shaped.build(store, 300)
    with store.session() as session:
        evaluate(session, settings, enabled_rules(settings.rules), shaped.AT)
    at = shaped.AT + timedelta(days=1)
    made: list[str] = []
    item_of = ical.item_of

    def counted(item: Any, *args: Any) -> ical.CalendarItem:
        made.append(item.followup_key)
        return item_of(item, *args)

    monkeypatch.setattr(ical, "item_of", counted)
    kept = Components()
    with store.session() as session:
        first = items_of(feed_source(session, at), PARIS, None, kept)
    assert len(made) == len(first) > 10
    made.clear()
    with store.session() as session:
        assert items_of(feed_source(session, at), PARIS, None, kept) == first and made == []
        changed = first[len(first) // 2].key
        session.execute(
            update(FollowUp).where(FollowUp.key == changed).values(subject="Appeler, déplacé")
        )
    with store.session() as session:
        again = items_of(feed_source(session, at), PARIS, None, kept)
        assert made == [changed]
        made.clear()
        assert again == items_of(feed_source(session, at), PARIS, None)  # made afresh
        assert len(made) == len(first)
    assert [item.summary for item in again if item.key == changed] == ["Appeler, déplacé"]


def test_the_cache_keeps_a_feed_per_origin_and_the_last_few_origins() -> None:
    """Each origin its own feed (their links differ); an owner's last ORIGINS are kept."""
    assert ORIGINS == 4
    cache = FeedCache()
    feeds = {origin: Feed(origin.encode(), f'"{origin}"', 0) for origin in "abcdef"}
    cache.put("claire", "a", "rows", feeds["a"])
    cache.put("bob", "a", "rows", feeds["b"])
    assert cache.get("claire", "a", "rows") == feeds["a"]
    assert cache.get("claire", "a", "other rows") is None, "what it is built from changed"
    assert cache.get("claire", "b", "rows") is None, "another origin"
    kept = cache.components("claire", "a")
    for origin in "bcde":
        cache.put("claire", origin, "rows", feeds[origin])
    assert [cache.get("claire", origin, "rows") for origin in "abcde"] == [
        None, *(feeds[origin] for origin in "bcde")
    ]  # fmt: skip
    assert cache.components("claire", "a") is not kept, "let go with its feed"
    assert cache.get("bob", "a", "rows") == feeds["b"], "another owner's are theirs"
