"""The late-payment penalties a nudge states (L441-10, D441-5), on both engines.

From the second client nudge on, to a business client only, where French law
applies (an owner in France, ``[late_payment]``); never to a consumer.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from followupd.rules.invoice_due import InvoiceDue
from followupd.store.db import Store
from tests.rulekit import (
    RuleAlone,
    imported,
    outbox,
    owner_settings,
    paris,
)
from tests.test_invoice_ladder import DATA as LADDER_DATA
from tests.test_rule_invoice_due import DATA as DOLLARS

# invoice_due's test data (F-1 to ACME, a business; F-2 to Globex), Globex a consumer here,
# F-1 paid 2,000 on 3 December
DATA = LADDER_DATA.replace('profile = "gentle"', 'kind = "consumer"').replace(
    "due = 2026-11-30\n", "due = 2026-11-30\npayments = [{ on = 2026-12-03, amount = 2000 }]\n", 1
)
RULE = RuleAlone(InvoiceDue, paris(2026, 11, 1), paris(2027, 1, 1))


def hand_worked() -> Decimal:
    """F-1 on 8 December 2026: 12,000 late 1-3 December, 10,000 from the 4th to the 8th.

    Rate: 2026-H1's ECB rate (2.15 %, standing in for 2026-H2) + 10 points = 12.15 %.
    12,000 x 12.15 % x 3 / 365 + 10,000 x 12.15 % x 5 / 365 = 11.98356 + 16.64384 = 28.63.
    """
    exact = (
        Decimal(12000) * Decimal("0.1215") * 3 / 365 + Decimal(10000) * Decimal("0.1215") * 5 / 365
    )
    return exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def test_the_second_nudge_states_the_penalties_to_a_business_only(
    store: Store, tmp_path: Path
) -> None:
    loaded = imported(store, tmp_path, DATA)
    settings = owner_settings(tmp_path, "[rules.invoice_due]\ngroup_by_client = false\n")
    RULE.pass_at(loaded, settings, paris(2026, 12, 1, 16, 0))
    RULE.pass_at(loaded, settings, paris(2026, 12, 8, 16, 0))
    rows = outbox(loaded)
    first, second = rows["invoice_due:F-1:nudge-1"], rows["invoice_due:F-1:nudge-2"]
    assert "L441-10" not in first.body, "the first nudge stays friendly"
    assert hand_worked() == Decimal("28.63")
    assert "28,63" in second.body
    assert "L441-10" in second.body
    assert "D441-5" in second.body
    assert "40,00" in second.body
    assert "8 jours de retard" in second.body
    consumer = rows["invoice_due:F-2:nudge-2"]
    assert "L441-10" not in consumer.body
    assert "D441-5" not in consumer.body
    assert "indemnity" not in consumer.body


def test_no_penalties_where_french_law_is_off(store: Store, tmp_path: Path) -> None:
    loaded = imported(store, tmp_path, DATA)
    settings = owner_settings(
        tmp_path,
        "[rules.invoice_due]\ngroup_by_client = false\n\n[late_payment]\nenabled = false\n",
    )
    RULE.pass_at(loaded, settings, paris(2026, 12, 8, 16, 0))
    assert "L441-10" not in outbox(loaded)["invoice_due:F-1:nudge-2"].body


def test_the_indemnity_is_stated_in_euros_for_an_invoice_in_dollars(
    store: Store, tmp_path: Path
) -> None:
    """D441-5's 40 euros stay euros: Globex, a business, is invoiced in dollars."""
    loaded = imported(store, tmp_path, DOLLARS)
    settings = owner_settings(tmp_path, "[rules.invoice_due]\ngroup_by_client = false\n")
    RULE.pass_at(loaded, settings, paris(2026, 12, 8, 23, 0))
    body = outbox(loaded)["invoice_due:F-2:nudge-2"].body
    interest = (Decimal(5000) * Decimal("0.1215") * 8 / 365).quantize(Decimal("0.01"))
    assert f"${interest} to date (8 days late)" in body
    assert "the fixed recovery indemnity of €40.00 (article D441-5)" in body
    assert "$40.00" not in body
