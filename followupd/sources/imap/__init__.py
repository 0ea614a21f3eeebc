"""The mailbox as a source: what a message's headers and delivery reports say, read-only."""
