"""The iCalendar feed: the owner's items as one document, behind a secret token."""
