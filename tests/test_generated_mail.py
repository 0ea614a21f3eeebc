"""The mailbox tests/bench/imap_sync.py measures: the same on every run, read as intended."""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from followupd.sources.imap.headers import message_facts
from tests.bench import generated_mail

LAST = datetime(2026, 11, 23, 9, 0, tzinfo=ZoneInfo("Europe/Paris"))


def generate(seed: int = 3) -> tuple[generated_mail.MailWriter, list[generated_mail.Mail]]:
    rng = random.Random(seed)
    people = generated_mail.crowd(rng, 40)
    return generated_mail.history(rng, people, 480, 120, LAST - timedelta(days=90), LAST)


def header_of(mail: generated_mail.Mail) -> bytes:
    return mail.data.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"


def test_the_same_seed_gives_the_same_mailbox_and_another_seed_another() -> None:
    _, first = generate()
    _, again = generate()
    _, other = generate(seed=4)
    assert [mail.data for mail in first] == [mail.data for mail in again]
    assert [mail.data for mail in first] != [mail.data for mail in other]


def test_the_folders_hold_what_was_asked_dated_in_the_span_in_office_hours() -> None:
    _, mails = generate()
    assert Counter(mail.folder for mail in mails) == {"inbox": 480, "sent": 120}
    assert all(LAST - timedelta(days=90) <= mail.date <= LAST + timedelta(days=3) for mail in mails)
    assert all(mail.date.weekday() < 5 and 8 <= mail.date.hour < 19 for mail in mails)
    assert len({mail.message_id for mail in mails}) == len(mails)


def test_every_header_reads_cleanly_and_as_its_kind() -> None:
    _, mails = generate()
    by_kind: dict[str, list[generated_mail.Mail]] = {}
    for mail in mails:
        by_kind.setdefault(mail.kind, []).append(mail)
    assert {"reply from a contact", "newsletter", "out-of-office",
            "owner's status update", "delivery status notification"} <= set(by_kind)  # fmt: skip
    earlier: set[str] = set()
    for mail in mails:
        facts = message_facts(header_of(mail))
        assert facts.problem is None, (mail.kind, facts.problem)
        assert facts.message_id == mail.message_id
        machine = mail.kind in ("newsletter", "out-of-office", "delivery status notification")
        assert facts.automatic is machine, mail.kind
        assert facts.report is (mail.kind == "delivery status notification")
        if mail.kind in ("reply from a contact", "owner's reply to a contact"):
            assert facts.answers and facts.answers[-1] in earlier
        if mail.folder == "sent":
            assert facts.sender == generated_mail.OWNER_ADDRESS
        earlier.add(mail.message_id)


def test_a_reply_to_a_nudge_names_it_and_comes_from_its_recipient() -> None:
    writer, _ = generate()
    person = writer.people.contacts[0]
    nudge = generated_mail.Nudge(
        "<abc.followupd@cabinet.example>", person.email, "Facture F-001 : rappel", LAST
    )
    reply = writer.answer_to_nudge(LAST + timedelta(hours=1), nudge, person)
    facts = message_facts(header_of(reply))
    assert facts.answers == ("<abc.followupd@cabinet.example>",)
    assert facts.sender == person.email
    assert facts.subject == "RE: Facture F-001 : rappel"
    assert not facts.automatic
