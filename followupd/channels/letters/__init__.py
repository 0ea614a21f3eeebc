"""Formal letters the owner prints and sends by registered mail: the formal notice to pay."""

from followupd.channels.letters.formal_notice import formal_notice_pdf
from followupd.channels.letters.notice import Creditor, Debtor, FormalNotice, NoticeInvoice

__all__ = ["Creditor", "Debtor", "FormalNotice", "NoticeInvoice", "formal_notice_pdf"]
