"""Reading iCalendar objects as real calendar apps write them: components, recurrences, zones."""
