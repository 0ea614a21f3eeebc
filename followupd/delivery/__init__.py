"""Delivery: claim due follow-ups, hold what must wait, hand them to a channel, record it."""
