"""The calendar as a source: what changed, what events mean, meetings as they pass."""
