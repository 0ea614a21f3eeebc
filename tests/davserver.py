"""Real CalDAV servers for the suite, in-process, on a free loopback port.

Two servers nobody here wrote: Radicale (the default) and Xandikos (the
``kind`` of a DavServer, see SERVERS). Each one's WSGI application is served
by wsgiref in a thread, behind a thin layer that counts requests and response
bytes (to show what a sync transferred) and can be stopped and started again
on the same port and storage (to show what an outage does). Users log in
with HTTP basic auth, with the passwords of ``root/users`` (``user:password``
lines): Radicale checks them itself; Xandikos has basic auth only behind TLS
(``--htpasswd`` needs ``--autocert``), so a small WSGI layer checks them in
front of its multi-user application, which keeps each user to their own
principal (``/claire/``, as on Radicale).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import http.client
import io
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import quote
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import radicale.config
from caldav.davclient import DAVClient
from radicale.app import Application
from xandikos.multi_user import MultiUserFilesystemBackend, MultiUserXandikosApp

from tests.smtpserver import free_port

USER = "claire"
PASSWORD = "dav-secret-4242"  # a test server's password
PASSWORD_VARIABLE = "FOLLOWUPD_TEST_CALDAV_PASSWORD"  # where followupd's config finds it
SERVERS = ["radicale", "xandikos"]
ICALENDAR = "text/calendar; charset=utf-8"
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


@dataclass
class DavServer:
    root: Path
    port: int
    kind: str = "radicale"  # one of SERVERS
    requests: list[tuple[str, str, int]] = field(default_factory=list)  # method, path, status
    response_bytes: int = 0
    calendar_data_sent: int = 0  # responses that carried calendar objects (GET, multiget…)
    _server: _ThreadingServer | None = None
    _thread: threading.Thread | None = None
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/"

    def serve_tls(self, certificate: Path, key: Path) -> None:
        """From now on, TLS only, with this certificate (a client that refuses it gets nothing)."""
        assert self._server is not None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(certificate), str(key))
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.scheme = "https"

    @property
    def storage(self) -> Path:
        return self.root / ("collections" if self.kind == "radicale" else "xandikos")

    def _radicale(self) -> WsgiApp:
        configuration = radicale.config.load()
        auth = {"type": "htpasswd", "htpasswd_filename": str(self.root / "users"),
                "htpasswd_encryption": "plain", "delay": "0"}  # fmt: skip
        settings = {
            "auth": auth,
            "storage": {"filesystem_folder": str(self.storage)},
            "rights": {"type": "owner_only"},
            "logging": {"level": "warning", "mask_passwords": "True"},
            "web": {"type": "none"},
        }
        configuration.update(settings, "test")
        application: WsgiApp = Application(configuration)
        return application

    def _xandikos(self) -> WsgiApp:
        """Xandikos's multi-user application, behind basic auth (see the module's docstring)."""
        # untyped in xandikos: called through Any
        backend: Any = MultiUserFilesystemBackend
        application: Any = MultiUserXandikosApp(
            backend(str(self.storage)), current_user_principal="/%(REMOTE_USER)s/"
        )
        one_at_a_time = threading.Lock()  # each request runs its own event loop on the store

        def authenticated(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            user = _basic_auth_user(environ.get("HTTP_AUTHORIZATION", ""), self.root / "users")
            if user is None:
                start_response(
                    "401 Unauthorized",
                    [("WWW-Authenticate", 'Basic realm="xandikos"'), ("Content-Length", "0")],
                )
                return [b""]
            environ["REMOTE_USER"] = user
            # Xandikos reads a body to its end, wsgiref's input is the connection: bounded
            length = int(environ.get("CONTENT_LENGTH") or 0)
            environ["wsgi.input"] = io.BytesIO(environ["wsgi.input"].read(length))
            with one_at_a_time:
                return list(application.handle_wsgi_request(environ, start_response))

        return authenticated

    def _app(self) -> WsgiApp:
        users = self.root / "users"
        if not users.exists():  # a restart keeps the users a test added
            users.write_text(f"{USER}:{PASSWORD}\n")
        application = self._radicale() if self.kind == "radicale" else self._xandikos()

        def counting(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            environ.pop("HTTP_ACCEPT_ENCODING", None)  # plain bodies, so they can be counted
            seen: dict[str, int] = {}

            def start(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
                seen["status"] = int(status.split()[0])
                return start_response(status, headers, *rest)

            body = list(application(environ, start))
            self.response_bytes += sum(len(chunk) for chunk in body)
            self.calendar_data_sent += b"".join(body).count(b"BEGIN:VCALENDAR")
            self.requests.append(
                (environ["REQUEST_METHOD"], environ["PATH_INFO"], seen.get("status", 0))
            )
            return body

        return counting

    def start(self) -> None:
        self._server = make_server(
            "127.0.0.1", self.port, self._app(), _ThreadingServer, _QuietHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def put(self, path: str, body: bytes) -> int:
        """PUT `body` as it is at `path` (unquoted), as the user: the status answered.

        The caldav library cannot send a body that is not UTF-8, nor choose
        every resource name an app chooses.
        """
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        login = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        headers = {"Authorization": f"Basic {login}", "Content-Type": ICALENDAR}
        try:
            connection.request("PUT", quote(path), body, headers)
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()

    def reset_counts(self) -> None:
        self.requests.clear()
        self.response_bytes = 0
        self.calendar_data_sent = 0


def _basic_auth_user(header: str, users: Path) -> str | None:
    """The user an ``Authorization: Basic`` header logs in, if `users` has that password."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    for line in users.read_text(encoding="utf-8").splitlines():
        known, _, expected = line.partition(":")
        if known == user and hmac.compare_digest(expected.encode(), password.encode()):
            return user
    return None


@contextmanager
def dav_server(root: Path, kind: str = "radicale") -> Iterator[DavServer]:
    root.mkdir(parents=True, exist_ok=True)
    server = DavServer(root=root, port=free_port(), kind=kind)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class CalendarApp:
    """What a calendar app does: plain CalDAV requests to the user's calendars."""

    def __init__(self, dav: DavServer) -> None:
        self.dav = dav
        self.client: Any = DAVClient(url=dav.url, username=USER, password=PASSWORD)

    def calendar(self, name: str) -> Any:
        principal = self.client.principal()
        for calendar in principal.calendars():
            if calendar.get_display_name() == name:
                return calendar
        return principal.make_calendar(name=name, cal_id=name.lower())

    def put(self, name: str, resource: str, text: str) -> None:
        url = str(self.calendar(name).url.join(resource))
        response = self.client.put(url, text, {"Content-Type": ICALENDAR})
        assert response.status in (201, 204), response.status

    def delete(self, name: str, resource: str) -> None:
        url = str(self.calendar(name).url.join(resource))
        assert self.client.delete(url).status in (200, 204)

    def get(self, url: str) -> tuple[str, str]:
        response = self.client.request(url, "GET")
        return response.raw, response.headers["ETag"]


def event(uid: str, summary: str, body: str = "", *lines: str) -> str:
    """One VEVENT as an app writes it; `lines` are more properties, such as DTSTART."""
    props = "".join(f"{line}\r\n" for line in lines)
    description = body.replace("\n", "\\n")
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//app//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20261101T000000Z\r\nSUMMARY:{summary}\r\n"
        + (f"DESCRIPTION:{description}\r\n" if body else "")
        + props
        + "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made with openssl in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    key, certificate = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(certificate), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return certificate, key
