"""Message templates: one Jinja2 file per rule and step, in French and English, run in a sandbox."""
