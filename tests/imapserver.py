"""A throwaway Dovecot IMAP server for the test suite.

The mailbox source is tested against a real IMAP server, as the store is against a real
PostgreSQL: Debian's ``dovecot-imapd``, started from a configuration written into a fresh
temporary directory (nothing is read from /etc/dovecot, nothing is shared with a system
instance), listening on 127.0.0.1 only, on two free ports: one speaking TLS from the first
byte (like 993) and one plain, offering STARTTLS (like 143). Its certificate is signed by a
certificate authority made for the run, so a client can verify it as it would a real one.

Dovecot's master process runs unprivileged: as the current user, or, under root (as in
CI), as Dovecot's own ``dovecot`` system user: Dovecot gives no mail access to UID 0.
With no privileges to drop, every service runs as that one user and nothing is chrooted.

Mailboxes are Maildirs with the special-use folders of a French mail client (the Sent
folder is not named "Sent", so finding it proves the ``\\Sent`` attribute of RFC 6154 was
read); CONDSTORE and IDLE are Dovecot's defaults. Any user name logs in with `PASSWORD`
(a static passdb) and gets an empty mailbox on first login, so a test can have a mailbox of
its own (`ImapServer.new_user`) with no restart and no file to reload.
"""

from __future__ import annotations

import contextlib
import grp
import itertools
import os
import pwd
import re
import selectors
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from imapclient import IMAPClient

HOST = "127.0.0.1"  # loopback only, never a routable address
OWNER = "claire"  # the owner's mailbox
SECOND_OWNER = "bruno"  # another owner's, for [[owners]] with an [owners.imap] each
PASSWORD = "imap-secret-4242"  # every user's password (a test server's)
SENT_FOLDER = "Éléments envoyés"  # \Sent, under a name no client guesses
DRAFTS_FOLDER = "Brouillons"  # \Drafts
TRASH_FOLDER = "Corbeille"  # \Trash
JUNK_FOLDER = "Indésirables"  # \Junk
SPECIAL_USE = {
    SENT_FOLDER: "\\Sent",
    DRAFTS_FOLDER: "\\Drafts",
    TRASH_FOLDER: "\\Trash",
    JUNK_FOLDER: "\\Junk",
}
SERVER_USER_WHEN_ROOT = "dovecot"  # made by Debian's dovecot-core
TIMEOUT_SECONDS = 30.0  # for every client socket operation and for the start

_NOT_FOUND = (
    "Dovecot not found: install Debian's `dovecot-imapd` package (tests/run does), "
    "which provides /usr/sbin/dovecot and /usr/lib/dovecot/imap"
)
_APPENDUID = re.compile(rb"\[APPENDUID (\d+) (\d+)\]")


def find_dovecot() -> Path:
    """The ``dovecot`` master binary (Debian's is in /usr/sbin, not on a user's PATH)."""
    for candidate in ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot", shutil.which("dovecot")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise RuntimeError(_NOT_FOUND)


def dovecot_version(binary: Path) -> tuple[int, ...]:
    """``dovecot --version`` as numbers: "2.3.19.1 (9b53102964)" -> (2, 3, 19, 1)."""
    out = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    return tuple(int(part) for part in out.split()[0].split("."))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _openssl(*args: str) -> None:
    proc = subprocess.run(
        ["openssl", *args], capture_output=True, text=True, check=False, timeout=60
    )
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")


def make_certificate_authority(folder: Path, name: str = "followupd test CA") -> Path:
    """Write a fresh CA (``ca.pem``, ``ca.key``) into `folder`; return the certificate's path."""
    folder.mkdir(parents=True, exist_ok=True)
    cert = folder / "ca.pem"
    _openssl(
        "req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-days", "2", "-subj", f"/CN={name}",
        "-keyout", str(folder / "ca.key"), "-out", str(cert),
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return cert


def _make_server_certificate(folder: Path, ca_cert: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost signed by the CA beside `ca_cert`."""
    key, csr, cert = folder / "server.key", folder / "server.csr", folder / "server.pem"
    extensions = folder / "server.ext"
    extensions.write_text(
        "subjectAltName = IP:127.0.0.1, DNS:localhost\n"
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature\n"
        "extendedKeyUsage = serverAuth\n",
        encoding="ascii",
    )
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-subj", f"/CN={HOST}", "-keyout", str(key), "-out", str(csr),
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca_cert),
        "-CAkey", str(ca_cert.with_suffix(".key")), "-CAcreateserial", "-days", "2",
        "-extfile", str(extensions), "-out", str(cert),
    )  # fmt: skip
    return cert, key


@dataclass(frozen=True)
class _RunAs:
    """Who Dovecot runs as: every service, and the owner of every mailbox file."""

    name: str
    uid: int
    gid: int

    @property
    def group(self) -> str:
        return grp.getgrgid(self.gid).gr_name

    @classmethod
    def choose(cls) -> _RunAs:
        if os.geteuid() != 0:
            entry = pwd.getpwuid(os.geteuid())
            return cls(entry.pw_name, entry.pw_uid, os.getegid())
        try:
            entry = pwd.getpwnam(SERVER_USER_WHEN_ROOT)
        except KeyError:
            raise RuntimeError(
                f"running as root, but there is no `{SERVER_USER_WHEN_ROOT}` user to run "
                "Dovecot as: " + _NOT_FOUND
            ) from None
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid)


def _config(workdir: Path, run_as: _RunAs, imap_port: int, imaps_port: int) -> str:
    """Dovecot 2.3's configuration, complete: no include of /etc/dovecot."""
    mailboxes = "".join(
        f'  mailbox "{name}" {{\n    special_use = {use}\n    auto = subscribe\n  }}\n'
        for name, use in SPECIAL_USE.items()
    )
    return f"""\
# written by tests/imapserver.py for one test run
protocols = imap
listen = {HOST}
base_dir = {workdir}/run
state_dir = {workdir}/state
instance_name = followupd-test-{imap_port}
log_path = {workdir}/dovecot.log
auth_verbose = yes
auth_failure_delay = 0  # a refused login answers at once, not after 2 s

# Unprivileged: every process runs as {run_as.name}, nothing to drop, nothing to chroot.
default_internal_user = {run_as.name}
default_internal_group = {run_as.group}
default_login_user = {run_as.name}
first_valid_uid = {run_as.uid}
last_valid_uid = {run_as.uid}
first_valid_gid = {run_as.gid}
last_valid_gid = {run_as.gid}
service anvil {{
  chroot =
  unix_listener anvil-auth-penalty {{
    mode = 0  # no growing delay for an IP after a refused login (tests refuse some)
  }}
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = {HOST}
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = {HOST}
    port = {imaps_port}
    ssl = yes
  }}
}}

ssl = yes
ssl_cert = <{workdir}/tls/server.pem
ssl_key = <{workdir}/tls/server.key
disable_plaintext_auth = yes
auth_mechanisms = plain login
passdb {{
  driver = static
  args = password={PASSWORD}
}}
userdb {{
  driver = static
  args = uid={run_as.uid} gid={run_as.gid} home={workdir}/home/%u
}}

mail_location = maildir:~/Maildir
mail_fsync = never
# IDLE is woken by inotify (about 0.5 s after a change); without it, a look every second.
mailbox_idle_check_interval = 1 secs
protocol imap {{
  mail_max_userip_connections = 100
}}
namespace inbox {{
  inbox = yes
  separator = /
{mailboxes}}}
"""


@dataclass
class ImapServer:
    """A running throwaway Dovecot; see `throwaway_dovecot`."""

    workdir: Path
    imap_port: int  # plain, with STARTTLS
    imaps_port: int  # TLS from the first byte
    ca_file: Path  # the CA that signed the server's certificate
    version: tuple[int, ...]
    host: str = HOST
    _numbers: Iterator[int] = field(default_factory=itertools.count)

    @property
    def log(self) -> Path:
        return self.workdir / "dovecot.log"

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError as exc:
            return f"(no Dovecot log at {self.log}: {exc})"
        return "\n".join(text.splitlines()[-lines:])

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts the harness's CA, and only it."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def new_user(self, prefix: str = "user") -> str:
        """A user name nobody logged in as yet: an empty mailbox, for one test alone."""
        return f"{prefix}{next(self._numbers)}"

    def connect(
        self, user: str = OWNER, password: str = PASSWORD, *, starttls: bool = False
    ) -> IMAPClient:
        """A client logged in as `user`, over TLS verified against the harness's CA.

        ``starttls=True`` connects to the plain port and upgrades with STARTTLS first.
        """
        if starttls:
            client = IMAPClient(self.host, port=self.imap_port, ssl=False, timeout=TIMEOUT_SECONDS)
            client.starttls(self.ssl_context())
        else:
            client = IMAPClient(
                self.host,
                port=self.imaps_port,
                ssl=True,
                ssl_context=self.ssl_context(),
                timeout=TIMEOUT_SECONDS,
            )
        try:
            client.login(user, password)
        except BaseException:
            client.shutdown()
            raise
        return client

    def append(
        self,
        user: str,
        folder: str,
        message: bytes,
        flags: Sequence[str] = (),
        date: datetime | None = None,
    ) -> int:
        """APPEND `message` to `user`'s `folder`; return the UID the server gave it.

        `date` is the message's INTERNALDATE (an aware datetime); None: the server's now.
        """
        with self.connect(user) as client:
            response: bytes = client.append(folder, message, flags=flags, msg_time=date)
        match = _APPENDUID.search(response)
        if match is None:
            raise RuntimeError(f"APPEND to {folder!r} answered without APPENDUID: {response!r}")
        return int(match.group(2))

    def append_many(self, user: str, folder: str, messages: Iterable[bytes]) -> None:
        """APPEND many messages over one connection (MULTIAPPEND), for big mailboxes."""
        with self.connect(user) as client:
            batch: list[bytes] = []
            for message in messages:
                batch.append(message)
                if len(batch) == 500:
                    client.multiappend(folder, batch)
                    batch = []
            if batch:
                client.multiappend(folder, batch)

    def renumber(self, user: str, folder: str) -> int:
        """Give `folder` a new UIDVALIDITY, its messages, UIDs and flags kept; return it.

        What a client sees when a server rebuilds a folder's index: every UID it knew is
        void. ``doveadm mailbox update`` sets the next value on the running server.
        """
        with self.connect(user) as client:
            new: int = client.folder_status(folder, ["UIDVALIDITY"])[b"UIDVALIDITY"] + 1
        command = [
            shutil.which("doveadm") or "/usr/bin/doveadm", "-c", str(self.workdir / "dovecot.conf"),
            "mailbox", "update", "-u", user, "--uid-validity", str(new), folder,
        ]  # fmt: skip
        proc = subprocess.run(
            command, capture_output=True, text=True, check=False, timeout=TIMEOUT_SECONDS
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(command)}: {proc.returncode}\n{proc.stderr}")
        return new


def _wait_until_ready(
    process: subprocess.Popen[bytes], notify: socket.socket, server: ImapServer
) -> None:
    """Wait for Dovecot's READY=1 (sd_notify, sent once it listens) or its exit, then log in.

    Dovecot is built with systemd's notify protocol (Debian's unit is ``Type=notify``); the
    harness plays the service manager's part with a datagram socket of its own.
    """
    deadline = time.monotonic() + TIMEOUT_SECONDS
    exited = os.pidfd_open(process.pid)
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(notify, selectors.EVENT_READ)
            selector.register(exited, selectors.EVENT_READ)
            while True:
                remaining = deadline - time.monotonic()
                events = selector.select(remaining) if remaining > 0 else []
                if not events:
                    raise RuntimeError(f"Dovecot was not ready in {TIMEOUT_SECONDS:.0f} s")
                if any(key.fileobj == exited for key, _ in events):
                    raise RuntimeError(f"Dovecot exited with status {process.wait()}")
                if b"READY=1" in notify.recv(4096).split(b"\n"):
                    break
    finally:
        os.close(exited)
    with server.connect() as client:  # logs in: auth is up too
        client.noop()


@contextlib.contextmanager
def throwaway_dovecot() -> Iterator[ImapServer]:
    """Yield a running Dovecot, empty: a user's mailbox is made when they first log in."""
    binary = find_dovecot()
    version = dovecot_version(binary)
    if version[:2] != (2, 3):
        raise RuntimeError(
            f"Dovecot {'.'.join(map(str, version))}: tests/imapserver.py writes Dovecot "
            "2.3's configuration (Debian 12's); 2.4 renamed most settings"
        )
    run_as = _RunAs.choose()
    workdir = Path(tempfile.mkdtemp(prefix="followupd-imap-"))
    process: subprocess.Popen[bytes] | None = None
    stack = contextlib.ExitStack()
    try:
        for sub in ("run", "state", "home", "tls"):
            (workdir / sub).mkdir()
        ca_file = make_certificate_authority(workdir / "ca")
        _make_server_certificate(workdir / "tls", ca_file)
        server = ImapServer(workdir, _free_port(), _free_port(), ca_file, version)
        config = workdir / "dovecot.conf"
        config.write_text(
            _config(workdir, run_as, server.imap_port, server.imaps_port), encoding="utf-8"
        )
        if os.geteuid() == 0:
            for path in [workdir, *workdir.rglob("*")]:
                os.chown(path, run_as.uid, run_as.gid)
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        stack.callback(notify.close)
        notify.bind(str(workdir / "notify"))
        os.chmod(workdir / "notify", 0o666)  # Dovecot, as run_as, sends to it
        stderr = workdir / "stderr.log"
        with stderr.open("wb") as errors:
            process = subprocess.Popen(
                [str(binary), "-F", "-c", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=errors,
                stderr=subprocess.STDOUT,
                cwd=workdir,
                env={**os.environ, "NOTIFY_SOCKET": str(workdir / "notify")},
                user=run_as.uid if os.geteuid() == 0 else None,
                group=run_as.gid if os.geteuid() == 0 else None,
                extra_groups=[] if os.geteuid() == 0 else None,
            )
        try:
            _wait_until_ready(process, notify, server)
        except Exception as exc:
            output = stderr.read_text(errors="replace")
            raise RuntimeError(
                f"{exc}\n--- Dovecot's output ---\n{output}\n"
                f"--- tail of {server.log} ---\n{server.log_tail()}"
            ) from exc
        yield server
    finally:
        try:
            if process is not None and process.poll() is None:
                process.terminate()  # the master stops its services, then exits
                try:
                    process.wait(timeout=TIMEOUT_SECONDS)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        finally:
            stack.close()
            shutil.rmtree(workdir, ignore_errors=True)
