"""What a follow-up is to the person who meets it: a call to make, a meeting to place, a task.

The channels show each kind differently (a meeting to place is a tentative
event, the rest are tasks), and the calendar source reads back what the owner
did with them (its `CalendarState`, in followupd.domain.states).
"""

from __future__ import annotations

import re

# Steps that ask the owner to place a meeting in the calendar: a tentative,
# transparent event at the due time, which the owner moves where it fits.
MEETINGS = {("checkpoint_meeting", None), ("mission_closeout", "bilan")}


def is_meeting(rule: str, step: str) -> bool:
    return (rule, None) in MEETINGS or (rule, step) in MEETINGS


# a client's promise to pay, not kept: the owner calls (followupd.rules.broken_promises)
PROMISE_BROKEN = "promise-broken"


def is_call(rule: str, step: str, key: str) -> bool:
    return rule == "escalate_by_phone" or step in ("call", PROMISE_BROKEN) or key.endswith(":call")


def tells_of_issue(rule: str, step: str) -> bool:
    """Whether the follow-up is a call to the client about an open issue (escalated by phone:
    followupd.rules.escalate_by_phone): made, it told the client of the issue."""
    return rule == "escalate_by_phone" and step == "call"


def tel_uri(phone: str | None) -> str | None:
    """A ``tel:`` link to `phone` as written ("+33 6 12 34 56 78"): its digits and plus signs."""
    digits = re.sub(r"[^0-9+]", "", phone or "")
    return "tel:" + digits if digits else None
