"""What the words of followupd mean, whatever stores or carries them.

Business days, owners and their scope, the states of a follow-up, the identity of items.
"""
