"""When an unpaid invoice can no longer be claimed in court: the limitation period (prescription).

French law: 5 years between professionals (Code de commerce L110-4), 2 years
for what a professional sold to a consumer (Code de la consommation L218-2).
Both run "from the day the holder of the right knew or should have known the
facts that let them act" (Code civil 2224). For a claim of payment the courts
place that day at the completion of the service, not at a late invoice
(Cass. com., 26 February 2020, n° 18-25.036; Cass. 1re civ., 19 May 2021,
n° 20-12.520 and 3e civ., 1 March 2023, n° 21-23.176 for consumers), the day
an invoice should have been issued (L441-9): an invoice issued on time, at
the latest when the mission ended. followupd takes the earlier of the issue
date and the mission's end: the due date, sometimes put forward (a "créance
à terme", Code civil 2233), would be later, and an alert that comes late is
worse than one that comes early.

The term is counted in years (Code civil 2228-2229, CPC 641-642): the claim
is time-barred once the same date of the last year has passed (29 February
counts as 28 February). A formal notice (mise en demeure), even by
registered letter, does not interrupt it (Cass. com., 18 May 2022,
n° 20-23.204); a claim in court does (Code civil 2241: an injonction de
payer, a summons, a référé-provision), and so does the debtor's
acknowledgment (2240), which a part payment can be: followupd does not move
the date for a part payment, to stay on the safe side.
"""

from __future__ import annotations

from datetime import date

from followupd.domain.months import add_months
from followupd.domain.states import ClientKind

# how many years a claim of payment lasts, by whom it is against
YEARS = {ClientKind.BUSINESS: 5, ClientKind.CONSUMER: 2}
LAW = {ClientKind.BUSINESS: "L110-4 C. com.", ClientKind.CONSUMER: "L218-2 C. consom."}


def limitation_start(issued: date, mission_end: date | None) -> date:
    """Where an invoice's limitation period starts: its issue, or the mission's end if earlier."""
    return min(issued, mission_end) if mission_end is not None else issued


def last_day_to_act(start: date, kind: ClientKind) -> date:
    """The last day a claim that started on `start` may be brought to court."""
    return add_months(start, 12 * YEARS[kind])
