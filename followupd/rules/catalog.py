"""The rules that ship with followupd: importing this module registers every one."""

from followupd.rules import (  # noqa: F401
    checkpoint_meeting,
    client_not_informed,
    contract_missing,
    deposit_due,
    escalate_by_phone,
    invoice_due,
    mission_closeout,
    new_year_greetings,
    open_ended_mission,
    status_update_due,
)
