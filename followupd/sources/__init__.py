"""Where missions and what happened come from: data files and the CalDAV calendar."""
