"""followupd: follows up client missions so that nothing slips through."""

__version__ = "0.1.0"
