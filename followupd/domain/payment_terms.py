"""The legal cap on payment terms between professionals in France (Code de commerce L441-10 I).

The term the parties agree on may not exceed 60 days from the invoice's issue
date; by derogation, "45 jours fin de mois" from the issue date may be agreed
instead, if the contract says so expressly (and it is no manifest abuse of
the creditor). The derogation only widens what is allowed: a due date within
60 days is always within the law, agreed end of month or not.

"45 jours fin de mois" is computed two ways in practice, and the DGCCRF
accepts both (fiche pratique "Délais de paiement : les règles à connaître"):
the issue date plus 45 days, then the end of that month; or the end of the
issue month, plus 45 days. A due date within either is accepted, so the cap
is the later of the two (the first is later for an invoice issued late in
the month, the second for one issued early).

A consumer client is not under L441-10 (it binds professionals), and a
seller outside France is not under French law: whom the cap applies to is
the caller's decision (sources.files.payment_terms).
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta

NET_DAYS = 60  # "soixante jours à compter de la date d'émission de la facture"
END_OF_MONTH_DAYS = 45  # "quarante-cinq jours fin de mois"


def end_of_month(day: date) -> date:
    """The last day of `day`'s month."""
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def net_cap(issued: date) -> date:
    """The latest due date of the general rule: 60 days from the issue date."""
    return issued + timedelta(days=NET_DAYS)


def end_of_month_cap(issued: date) -> date:
    """The latest due date of "45 jours fin de mois", the later of its two computations."""
    then_end_of_month = end_of_month(issued + timedelta(days=END_OF_MONTH_DAYS))
    end_of_month_then = end_of_month(issued) + timedelta(days=END_OF_MONTH_DAYS)
    return max(then_end_of_month, end_of_month_then)


def latest_legal_due(issued: date, end_of_month_agreed: bool = False) -> date:
    """The latest due date L441-10 I allows an invoice issued on `issued`.

    `end_of_month_agreed`: the contract expressly agreed "45 jours fin de mois".
    """
    if end_of_month_agreed:
        return max(net_cap(issued), end_of_month_cap(issued))
    return net_cap(issued)


def beyond_legal_cap(issued: date, due: date, end_of_month_agreed: bool = False) -> bool:
    """Whether an invoice issued on `issued` and due on `due` exceeds the legal cap."""
    return due > latest_legal_due(issued, end_of_month_agreed)
