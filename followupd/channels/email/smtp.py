"""An SMTP client made from ``[smtp]``, with its security honoured strictly.

``starttls`` requires the server to offer STARTTLS (no silent fallback to
plain text), ``tls`` speaks TLS from the first byte, and certificates are
always verified, against ``ca_file`` when one is given.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping

import aiosmtplib

from followupd.config.sections import Smtp


def tls_context(ca_file: str | None) -> ssl.SSLContext:
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
        tls_context=tls_context(str(smtp.ca_file) if smtp.ca_file else None),
        timeout=smtp.timeout_seconds,
    )
