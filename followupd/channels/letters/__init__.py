"""Formal letters the owner prints and sends by registered mail: the formal notice to pay."""

from followupd.domain.formal_notice import Creditor, Debtor, FormalNotice, NoticeInvoice


def formal_notice_pdf(notice: FormalNotice) -> bytes:
    """The formal notice as a PDF (followupd.channels.letters.formal_notice).

    ReportLab is imported with the first letter made, not with this package,
    which every evaluation pass imports.
    """
    from followupd.channels.letters.formal_notice import formal_notice_pdf as pdf

    return pdf(notice)


__all__ = ["Creditor", "Debtor", "FormalNotice", "NoticeInvoice", "formal_notice_pdf"]
