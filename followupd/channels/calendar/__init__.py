"""The calendar channel: follow-ups as iCalendar objects, written over CalDAV."""
