"""The feed's secret token: 256 random bits, made on first use, kept in ``[feed] token_file``.

The token is the only thing guarding the feed, so it is long, written with
mode 0600, and compared in constant time.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path


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
