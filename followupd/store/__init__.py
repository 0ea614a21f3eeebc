"""The durable state of followupd: one SQL database, SQLite or PostgreSQL."""
