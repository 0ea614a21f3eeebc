"""Data files: TOML records validated one by one and imported all or nothing."""
