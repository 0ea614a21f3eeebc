"""The config file: where it is, its sections, types, secrets, owners and rule options."""
