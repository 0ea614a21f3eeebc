"""What the words of followupd mean, whatever stores or carries them.

Business days, an owner's scope, the states of a follow-up, the identity of items.
"""
