"""An SMTP client made from ``[smtp]``, with its security honoured strictly.

``starttls`` requires the server to offer STARTTLS (no silent fallback to
plain text), ``tls`` speaks TLS from the first byte, and certificates are
always verified, against ``ca_file`` when one is given. The TLS context is
made once (loading the trusted certificates costs milliseconds), again only
when ``ca_file`` changes on disk; with ``security = "none"``, never.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

import aiosmtplib

from followupd.config.sections import Smtp


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """The context that verifies the server, shared by every connection (SSLContext may be)."""
    stamp = Path(ca_file).stat().st_mtime_ns if ca_file and Path(ca_file).exists() else None
    return _context(ca_file, stamp)


@lru_cache(maxsize=8)
def _context(ca_file: str | None, stamp: int | None) -> ssl.SSLContext:
    """`stamp`: the CA file's modification time, so that a changed file is read again."""
    return ssl.create_default_context(cafile=ca_file)


def smtp_client(smtp: Smtp, environ: Mapping[str, str] | None = None) -> aiosmtplib.SMTP:
    """An unconnected client; connecting also logs in when a username is set."""
    password = smtp.password("smtp").reveal(environ) if smtp.username else None
    return aiosmtplib.SMTP(
        hostname=smtp.host,
        port=smtp.effective_port,
        username=smtp.username,
        password=password,
        use_tls=smtp.security == "tls",
        start_tls=smtp.security == "starttls",
        validate_certs=True,
        tls_context=(
            None
            if smtp.security == "none"
            else tls_context(str(smtp.ca_file) if smtp.ca_file else None)
        ),
        timeout=smtp.timeout_seconds,
    )
