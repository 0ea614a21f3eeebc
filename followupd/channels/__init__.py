"""Where follow-ups go: email (SMTP or a Maildir), calendar (CalDAV), the feed."""
