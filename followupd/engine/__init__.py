"""Evaluation: run the rules at an instant and record what they intend in the outbox."""
