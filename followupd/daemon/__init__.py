"""`followupd run`: the long-running service, its HTTP side, metrics, logs and systemd."""
