"""The feed's secret tokens: 256 random bits each, made on first use, kept in a file.

The single owner's token is in ``[feed] token_file``; with several owners,
each has their own (``feed-KEY.token`` by default), and a token opens that
owner's feed only. A token is the only thing guarding a feed, so it is long,
written with mode 0600, and compared in constant time.
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path

from followupd.config.owners import OwnerEntry


def ensure_token(path: Path) -> str:
    """The token in `path`, written there first if there is none."""
    if path.exists():
        token = path.read_text(encoding="ascii").strip()
        if len(token) >= 22:  # 128 bits in URL-safe base64
            return token
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = secrets.token_urlsafe(32)
    partial = path.with_name(path.name + ".new")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as file:
        file.write(token + "\n")
    partial.replace(path)
    return token


def matches(given: str, token: str) -> bool:
    return hmac.compare_digest(given.encode(), token.encode())


def ensure_tokens(owners: Iterable[OwnerEntry]) -> dict[str, str]:
    """Each owner's token, by owner key, made where missing."""
    return {owner.key: ensure_token(owner.token_file) for owner in owners}


def owner_of(given: str, tokens: Mapping[str, str]) -> str | None:
    """The key of the owner whose token `given` is; every token is compared, in constant time."""
    found = None
    for key, token in tokens.items():
        if matches(given, token):
            found = key
    return found
