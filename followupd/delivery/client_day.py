"""One client email a day per contact, whatever the rule: no pile in a client's inbox.

A contact could otherwise get, in the same minute, the new-year greetings, a
deposit request and an invoice nudge, each correct on its own. Delivery sends
them over several days instead:

- **What counts as one email.** A contact's emails of one rule: the
  greetings; the invoice emails (with ``group_by_client``, the default, the
  nudges leaving together are one email; without it the owner asked for one
  email per invoice, and those leave together as before); the deposit emails
  (a contact with several missions starting together gets their requests the
  same day, not one a day for weeks).
- **Which goes first.** The greetings, which carry no money talk (DOMAIN):
  they never share the client's day with a nudge. Then the email due first.
  The others wait for the next opening of the send window, in the client's
  zone, and go then if nothing else took that day.
- **A day already taken.** When a client email went to the contact today, a
  different one waits for the next opening; the invoice emails keep their own
  rule (a grouped nudge waits after a nudge, a thank-you does not).
- **Nothing missed for it.** An email whose grace ends before that opening
  goes now, with the other, rather than expire for followupd's own pacing.

The day is the client's (their zone and country); a contact's emails all
belong to one client.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from followupd.config.settings import Settings
from followupd.delivery.holds import Place
from followupd.domain.business_calendar import BusinessCalendar, zone
from followupd.domain.states import Audience, Channel
from followupd.rules.client_nudges import RULE as INVOICES
from followupd.rules.invoice_due import THANK_YOU
from followupd.store.outbox.client_nudges import SentEmail
from followupd.store.outbox.rows import FollowUpRow

GREETINGS = "new_year_greetings"
ANOTHER_TODAY = "an email went to this contact today: one a day"
NUDGE_TODAY = "a nudge went to this contact today: one a day"


def client_email(row: FollowUpRow) -> bool:
    """Whether `row` is an email to a client's contact (what this module paces)."""
    return (
        row.audience == Audience.CLIENT
        and row.channel == Channel.EMAIL
        and row.contact_id is not None
    )


def one_a_day(
    settings: Settings,
    rows: Sequence[FollowUpRow],
    places: Mapping[int, Place],
    sent: Mapping[int, Sequence[SentEmail]],
    at: datetime,
    calendar: BusinessCalendar,
    grouped: Callable[[FollowUpRow], bool],
) -> dict[str, tuple[datetime, str]]:
    """The client emails of `rows` that wait for another day: key -> (the next opening of
    the send window, why).

    `sent`: the client emails already sent to the contacts of `rows`, any rule;
    `grouped`: whether an invoice nudge is grouped by contact, as its owner chose.
    """
    by_contact: dict[int, list[FollowUpRow]] = {}
    for row in rows:
        if client_email(row):
            by_contact.setdefault(row.contact_id or 0, []).append(row)
    waits: dict[str, tuple[datetime, str]] = {}
    for contact, found in by_contact.items():
        place = next((places[m] for row in found if (m := row.mission_id or 0) in places), None)
        owner = settings.owner_for(found[0].owner)
        tz = zone((place.timezone if place else None) or owner.timezone)
        countries = ((place.country if place else None) or owner.country,)
        today = at.astimezone(tz).date()
        until = calendar.due_at(today, 1, tz, countries)
        by_rule: dict[str, list[FollowUpRow]] = {}  # each rule's emails leave together
        for row in found:
            by_rule.setdefault(row.rule, []).append(row)
        went = [
            email
            for email in sent.get(contact, ())
            if email.sent_at is not None and email.sent_at.astimezone(tz).date() == today
        ]
        if went:
            taken = {email.rule for email in went}
            nudged = any(e.rule == INVOICES and e.step != THANK_YOU for e in went)
            for rule, members in by_rule.items():
                for row in members:
                    if rule not in taken:
                        waits[row.key] = (until, ANOTHER_TODAY)
                    elif rule == INVOICES and nudged and grouped(row):
                        waits[row.key] = (until, NUDGE_TODAY)
        else:
            order = sorted(
                by_rule.values(),
                key=lambda members: (
                    members[0].rule != GREETINGS,
                    min(row.due_at for row in members),
                    min(row.key for row in members),
                ),
            )
            for members in order[1:]:
                for row in members:
                    waits[row.key] = (until, ANOTHER_TODAY)
        for row in found:  # its last chance: it goes rather than be missed
            if row.key in waits and row.expires_at is not None and row.expires_at < until:
                del waits[row.key]
    return waits
