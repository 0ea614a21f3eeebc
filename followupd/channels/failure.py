"""The one failure every channel reports: whether trying again later can help."""

from __future__ import annotations


class DeliveryError(Exception):
    """A follow-up could not be handed over; `permanent` says whether to try again."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.permanent = permanent
