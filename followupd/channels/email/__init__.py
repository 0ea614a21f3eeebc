"""The email channel: messages, SMTP or a Maildir, and the pace they are sent at."""
