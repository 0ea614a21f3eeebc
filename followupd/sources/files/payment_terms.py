"""`followupd import`: invoices due beyond the legal cap on payment terms (France, L441-10 I).

The cap (followupd.domain.payment_terms) binds a French seller and a business
client: it is checked when the owner of the invoice's mission is in France
(the seller's law: the owner's ``country``, not the client's) and the client
is a business (a consumer is not under L441-10). ``[rules.invoice_due]
payment_terms_check`` says what an invoice beyond it is: imported with a
warning ("warn", the default), refused with the other problems of the import
("error"), or not looked at ("off"); ``end_of_month_terms = true`` says the
contracts agree "45 jours fin de mois". An owner's ``[owners.rules.invoice_due]``
overrides both for their missions.

A record's owner and client kind are read as the import will write them: from
the files when they give the field, else from the store, else the default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from followupd.config.rule_options import InvoiceDueOptions, PaymentTermsCheck
from followupd.config.settings import Settings
from followupd.domain.payment_terms import latest_legal_due
from followupd.domain.states import ClientKind
from followupd.errors import Problem
from followupd.sources.files.records import ClientRecord, InvoiceRecord, MissionRecord
from followupd.store.chunks import chunked
from followupd.store.models import Client, Mission

if TYPE_CHECKING:  # the importer calls this module
    from followupd.sources.files.importer import Located

FRANCE = "FR"
CAP_LAW = "L441-10 I C. com."


@dataclass(frozen=True)
class TermsPolicy:
    """How one owner's invoices are checked: the switch, the agreed terms, the owner's country."""

    check: PaymentTermsCheck = "warn"
    end_of_month: bool = False
    country: str = FRANCE

    @property
    def applies(self) -> bool:
        return self.check != "off" and self.country == FRANCE

    @classmethod
    def of(cls, options: InvoiceDueOptions, country: str) -> TermsPolicy:
        return cls(options.payment_terms_check, options.end_of_month_terms, country)


def terms_policies(settings: Settings) -> dict[str, TermsPolicy]:
    """Each owner's policy by owner key, in the config's order (the first is the default)."""
    base = settings.rules.invoice_due
    return {
        entry.key: TermsPolicy.of(
            base.model_copy(update=entry.rule_overrides.get("invoice_due", {})), entry.country
        )
        for entry in settings.owners
    }


@dataclass(frozen=True)
class TermsFindings:
    warnings: list[Problem]
    errors: list[Problem]


def check_payment_terms(
    session: Session, located: Sequence[Located], policies: Mapping[str, TermsPolicy]
) -> TermsFindings:
    """The imported invoices due beyond the cap, as warnings or errors by their owner's policy."""
    findings = TermsFindings([], [])
    # an invalid record stands in with its keys only (importer._placeholder): not checked
    invoices = [
        (item, item.record)
        for item in located
        if isinstance(item.record, InvoiceRecord)
        and {"issued", "due"} <= item.record.model_fields_set
    ]
    if not invoices or not any(policy.applies for policy in policies.values()):
        return findings
    parties = _Parties(session, located, {record.mission for _, record in invoices})
    first = next(iter(policies))
    for item, record in invoices:
        found = parties.of(record.mission)
        if found is None:  # a dangling mission: the import reports it already
            continue
        owner, kind = found
        policy = policies.get(owner or first, policies[first])
        if not policy.applies or kind != ClientKind.BUSINESS:
            continue
        latest = latest_legal_due(record.issued, policy.end_of_month)
        if record.due <= latest:
            continue
        message = _beyond(record.issued, record.due, latest, policy.end_of_month)
        problem = item.problem(message, "due")
        (findings.errors if policy.check == "error" else findings.warnings).append(problem)
    return findings


def _beyond(issued: date, due: date, latest: date, end_of_month: bool) -> str:
    allowed = (
        '60 days from the issue date, or 45 days end of month ("45 jours fin de mois", agreed)'
        if end_of_month
        else "60 days from the issue date"
    )
    days = (due - latest).days
    late = f"{days} day{'s' if days != 1 else ''}"
    message = (
        f"{due.isoformat()} is {late} beyond the legal cap on payment "
        f"terms between professionals ({CAP_LAW}): at most {allowed}, issued on "
        f"{issued.isoformat()}, so {latest.isoformat()} at the latest"
    )
    if not end_of_month and due <= latest_legal_due(issued, end_of_month_agreed=True):
        message += (
            '; within "45 jours fin de mois", which a contract may expressly agree '
            "([rules.invoice_due] end_of_month_terms = true)"
        )
    return message


class _Parties:
    """Whose each mission is and what kind its client is, as the import will leave them."""

    def __init__(self, session: Session, located: Sequence[Located], missions: set[str]) -> None:
        self.missions = {
            item.record.key: item.record
            for item in located
            if isinstance(item.record, MissionRecord)
        }
        self.clients = {
            item.record.key: item.record
            for item in located
            if isinstance(item.record, ClientRecord)
        }
        self.stored_missions: dict[str, tuple[str | None, str]] = {}
        for chunk in chunked(sorted(missions)):
            for key, owner, client in session.execute(
                select(Mission.key, Mission.owner, Client.key)
                .join(Client, Mission.client_id == Client.id)
                .where(Mission.key.in_(chunk))
            ):
                self.stored_missions[key] = (owner, client)
        clients = {client for _, client in self.stored_missions.values()}
        clients |= {record.client for record in self.missions.values()}
        self.stored_kinds: dict[str, ClientKind] = {}
        for chunk in chunked(sorted(clients)):
            kinds = select(Client.key, Client.kind).where(Client.key.in_(chunk))
            for key, kind in session.execute(kinds):
                self.stored_kinds[key] = kind

    def of(self, mission: str) -> tuple[str | None, ClientKind] | None:
        """The owner key (None: the first owner) and the client's kind of `mission`."""
        stored = self.stored_missions.get(mission)
        record = self.missions.get(mission)
        if record is not None:
            given = "owner" in record.model_fields_set
            owner = record.owner if given or stored is None else stored[0]
            client = record.client
        elif stored is not None:
            owner, client = stored
        else:
            return None
        return owner, self._kind(client)

    def _kind(self, client: str) -> ClientKind:
        record = self.clients.get(client)
        stored = self.stored_kinds.get(client)
        if record is not None and ("kind" in record.model_fields_set or stored is None):
            return record.kind
        return stored if stored is not None else ClientKind.BUSINESS
