"""The rules: each turns the store at an instant into what to follow up, and when."""
