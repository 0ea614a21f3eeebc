"""The rules that ship with followupd: importing this module registers every one."""

from followupd.rules import invoice_due  # noqa: F401
