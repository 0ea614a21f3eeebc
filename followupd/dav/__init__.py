"""A CalDAV client shared by the calendar source and the calendar channel."""
