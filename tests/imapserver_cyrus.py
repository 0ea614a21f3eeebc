"""A throwaway Cyrus IMAP server: the suite's second IMAP implementation, beside Dovecot.

The mailbox source must work with more than one real server, so the suite also runs
Debian's Cyrus IMAP 3.6: the master process of ``cyrus-common`` and the ``imapd`` of
``cyrus-imapd``, started from a configuration written into a fresh temporary directory
(nothing is read from /etc), on two free ports of 127.0.0.1 (TLS from the first byte, and
plain with STARTTLS), with a certificate signed by a CA made for the run. The interface is
`tests.imapserver.ImapServer`'s: same users, password, folder names and special uses.

Debian's ``cyrus-imapd`` conflicts with ``dovecot-imapd`` (both provide ``imap-server``),
so tests/run installs ``cyrus-common`` and unpacks the ``cyrus-imapd`` package into
``.cache/cyrus-imapd`` (its ``imapd`` and ``idled``, nothing more) instead of installing
it. Under root (as in CI), everything runs as Cyrus's own ``cyrus`` user; otherwise as the
current user, made Cyrus's ``cyrus_user``.

Logins: libsasl2 asks "saslauthd" over a Unix socket; the harness answers on that socket
itself (`_PasswordCheck`): any user name with `PASSWORD` is accepted, any other password
refused, so no password database is written and no daemon from /etc runs. A first login
creates the user's INBOX and the folders of a French mail client (Cyrus's ``autocreate``);
`CyrusServer.new_user` also names their special uses with SETMETADATA (RFC 6154 and 5464),
in the case the RFC writes them: Cyrus's own autocreation writes them in lower case
(``\\sent``), which a user name not made by `new_user` still shows.

Cyrus logs to syslog, which a test machine may not have: `log_tail` shows the master's
output and the protocol transcript Cyrus writes for each user made by `new_user` (its
"telemetry" log, kept only for users that have a folder under ``log/``).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from imapclient.imap_utf7 import encode as encode_folder_name

from tests.imapserver import (
    HOST,
    OWNER,
    PASSWORD,
    SECOND_OWNER,
    SPECIAL_USE,
    TIMEOUT_SECONDS,
    ImapServer,
    _free_port,
    _make_server_certificate,
    _RunAs,
    make_certificate_authority,
)

SERVER_USER_WHEN_ROOT = "cyrus"  # made by Debian's cyrus-common
CYRUS_TOOLS = Path("/usr/lib/cyrus/bin")  # cyrus-common's master, reconstruct, mbpath...
# Where tests/run unpacks cyrus-imapd's binaries (the package cannot be installed beside
# dovecot-imapd); a machine with cyrus-imapd installed has them in CYRUS_TOOLS instead.
UNPACKED = Path(__file__).resolve().parent.parent / ".cache" / "cyrus-imapd"

_NOT_FOUND = (
    "Cyrus IMAP not found: tests/run installs Debian's `cyrus-common` and unpacks "
    "`cyrus-imapd` into .cache/cyrus-imapd (it conflicts with dovecot-imapd)"
)
_VERSION = re.compile(r"cyrus-imapd (\d+(?:\.\d+)+)")


@dataclass(frozen=True)
class CyrusPrograms:
    """The binaries a run needs, from cyrus-common and cyrus-imapd."""

    master: Path
    imapd: Path
    idled: Path
    reconstruct: Path
    mbpath: Path


def find_cyrus() -> CyrusPrograms:
    """cyrus-common's tools, and cyrus-imapd's imapd and idled installed or unpacked."""
    for server_dir in (CYRUS_TOOLS, UNPACKED / "usr/lib/cyrus/bin"):
        imapd, idled = server_dir / "imapd", server_dir / "idled"
        if imapd.is_file() and idled.is_file():
            break
    else:
        raise RuntimeError(_NOT_FOUND)
    programs = CyrusPrograms(
        CYRUS_TOOLS / "master", imapd, idled, CYRUS_TOOLS / "reconstruct", CYRUS_TOOLS / "mbpath"
    )
    for program in (programs.master, programs.reconstruct, programs.mbpath):
        if not os.access(program, os.X_OK):
            raise RuntimeError(f"{program} missing: {_NOT_FOUND}")
    return programs


def _check_unpacked(programs: CyrusPrograms) -> None:
    """The unpacked imapd must be of cyrus-common's very version (they share libraries)."""
    if not programs.imapd.is_relative_to(UNPACKED):
        return
    unpacked = (UNPACKED / "version").read_text(encoding="ascii").strip()
    out = subprocess.run(
        [str(programs.master), "-V"], capture_output=True, text=True, check=False, timeout=30
    ).stdout
    if not out.strip().endswith(f"-{unpacked}"):
        raise RuntimeError(
            f"cyrus-imapd {unpacked} unpacked in {UNPACKED}, but cyrus-common says {out!r}: "
            "run tests/run again, it unpacks the matching version"
        )


def cyrus_version(master: Path) -> tuple[int, ...]:
    """``master -V`` as numbers: "cyrus-imapd 3.6.1-Debian-3.6.1-4+deb12u5" -> (3, 6, 1)."""
    out = subprocess.run(
        [str(master), "-V"], capture_output=True, text=True, check=False, timeout=30
    ).stdout
    match = _VERSION.search(out)
    if match is None:
        raise RuntimeError(f"{master} -V said {out!r}, not a Cyrus version")
    return tuple(int(part) for part in match.group(1).split("."))


def _run_as() -> _RunAs:
    """Cyrus's ``cyrus`` user under root; else the current user, as Dovecot's harness does."""
    if os.geteuid() != 0:
        return _RunAs.choose()
    try:
        entry = pwd.getpwnam(SERVER_USER_WHEN_ROOT)
    except KeyError:
        raise RuntimeError(
            f"running as root, but there is no `{SERVER_USER_WHEN_ROOT}` user: {_NOT_FOUND}"
        ) from None
    return _RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid)


def _memory_backed_tmp() -> str | None:
    """/dev/shm where there is one: Cyrus syncs every write to disk (some 150 fsync calls for
    a new user's folders), free in memory; None, the usual temporary folder, elsewhere."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK) else None


def _mailbox_name(user: str, folder: str) -> str:
    """The name Cyrus's tools know a user's folder by: "user/claire/Brouillons"."""
    if folder.upper() == "INBOX":
        return f"user/{user}"
    return f"user/{user}/{encode_folder_name(folder).decode('ascii')}"


class _PasswordCheck:
    """The saslauthd side of libsasl2's ``sasl_pwcheck_method: saslauthd``, for one run.

    libsasl2 sends four counted strings (user, password, service, realm: a 2-byte length in
    network order, then the bytes) and reads one back, "OK" or "NO" followed by a reason.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(path))
        os.chmod(path, 0o666)  # imapd, as the server's user, connects to it
        self._listener.listen(64)
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._thread = threading.Thread(target=self._serve, name="cyrus-saslauthd", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._wake_writer.send(b"x")
        self._thread.join(TIMEOUT_SECONDS)
        for sock in (self._listener, self._wake_reader, self._wake_writer):
            sock.close()

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_reader, selectors.EVENT_READ)
            while True:
                ready = {key.fileobj for key, _ in selector.select()}
                if self._wake_reader in ready:
                    return
                connection, _ = self._listener.accept()
                with connection, contextlib.suppress(OSError, ValueError, struct.error):
                    connection.settimeout(TIMEOUT_SECONDS)
                    self._answer(connection)

    @staticmethod
    def _answer(connection: socket.socket) -> None:
        with connection.makefile("rb") as stream:
            fields: list[bytes] = []
            for _ in range(4):  # user, password, service, realm
                (length,) = struct.unpack("!H", stream.read(2))
                fields.append(stream.read(length))
                if len(fields[-1]) != length:
                    raise ValueError("saslauthd request cut short")
        answer = b"OK" if fields[1] == PASSWORD.encode() else b"NO wrong password"
        connection.sendall(struct.pack("!H", len(answer)) + answer)


@dataclass
class CyrusServer(ImapServer):
    """A running throwaway Cyrus; see `throwaway_cyrus`. Connects, appends as Dovecot's."""

    programs: CyrusPrograms = field(kw_only=True)
    run_as: _RunAs = field(kw_only=True)  # the server's processes and files
    _prepared: set[str] = field(default_factory=set)

    @property
    def log(self) -> Path:
        return self.workdir / "master.log"

    @property
    def config(self) -> Path:
        return self.workdir / "imapd.conf"

    def log_tail(self, lines: int = 40) -> str:
        """The master's output, then the newest protocol transcript of a `new_user` user."""
        parts = [f"--- {self.log} ---", _tail(self.log, lines)]
        transcripts = sorted(
            (path for path in (self.workdir / "config/log").rglob("*") if path.is_file()),
            key=lambda path: path.stat().st_mtime,
        )
        if transcripts:
            parts += [f"--- {transcripts[-1]} ---", _tail(transcripts[-1], lines)]
        return "\n".join(parts)

    def new_user(self, prefix: str = "user") -> str:
        """A user nobody logged in as yet, with the special-use folders named as RFC 6154 does."""
        user = super().new_user(prefix)
        self.prepare(user)
        return user

    def prepare(self, user: str) -> None:
        """Make `user`'s mailbox now (a first login) and mark its special-use folders."""
        if user in self._prepared:
            return
        transcripts = self.workdir / "config/log" / user
        transcripts.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            os.chown(transcripts, self.run_as.uid, self.run_as.gid)
        with self.connect(user) as client:
            for folder, use in SPECIAL_USE.items():
                name = '"' + encode_folder_name(folder).decode("ascii") + '"'
                value = '"' + use.replace("\\", "\\\\") + '"'  # \Sent quoted: "\\Sent"
                typ, data = client._imap.xatom(
                    "SETMETADATA", name, f"(/private/specialuse {value})"
                )
                if typ != "OK":
                    raise RuntimeError(f"SETMETADATA on {folder!r} for {user}: {typ} {data!r}")
        self._prepared.add(user)

    def append_many(self, user: str, folder: str, messages: Iterable[bytes]) -> None:
        """APPEND many messages over one connection, one command each.

        Cyrus answers BAD to imapclient's MULTIAPPEND of more than one message
        ("Missing required argument to Append command").
        """
        with self.connect(user) as client:
            for message in messages:
                client.append(folder, message)

    def renumber(self, user: str, folder: str) -> int:
        """Give `folder` a new UIDVALIDITY, as Cyrus does when it rebuilds a lost index.

        The folder's ``cyrus.index`` is removed and ``reconstruct`` rebuilds it from the
        message files: same messages and UIDs (Cyrus names each file by its UID), a new
        UIDVALIDITY, and the flags (kept only in the index) set again here. No connection
        may have the folder selected meanwhile. Returns the new UIDVALIDITY.
        """
        with self.connect(user) as client:
            old = client.select_folder(folder, readonly=True)[b"UIDVALIDITY"]
            flags = {
                uid: [flag for flag in data[b"FLAGS"] if flag != b"\\Recent"]
                for uid, data in client.fetch(client.search(), ["FLAGS"]).items()
            }
        directory = Path(self._tool("mbpath", _mailbox_name(user, folder)).strip())
        (directory / "cyrus.index").unlink()
        self._tool("reconstruct", _mailbox_name(user, folder))
        with self.connect(user) as client:
            new: int = client.select_folder(folder)[b"UIDVALIDITY"]
            for uid, kept in flags.items():
                if kept:
                    client.add_flags([uid], kept, silent=True)
        if new == old:
            raise RuntimeError(f"reconstruct kept UIDVALIDITY {old} of {folder!r}")
        return new

    def _tool(self, name: str, *args: str) -> str:
        """Run one of cyrus-common's tools on this server's configuration, as its user."""
        program = getattr(self.programs, name)
        root = os.geteuid() == 0
        proc = subprocess.run(
            [str(program), "-C", str(self.config), *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=TIMEOUT_SECONDS,
            user=self.run_as.uid if root else None,
            group=self.run_as.gid if root else None,
            extra_groups=[] if root else None,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{name} {' '.join(args)}: {proc.returncode}\n{proc.stderr}")
        return proc.stdout


def _tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(cannot read {path}: {exc})"


def _imapd_conf(workdir: Path, run_as: _RunAs, port: int) -> str:
    """Cyrus 3.6's imapd.conf, complete: no include, nothing read from /etc."""
    encoded = {name: encode_folder_name(name).decode("ascii") for name in SPECIAL_USE}
    folders = "|".join(encoded.values())
    special = "".join(  # xlist-sent: Sent makes Sent \sent when autocreated (in lower case)
        "xlist-" + use.removeprefix("\\").lower() + f": {encoded[name]}\n"
        for name, use in SPECIAL_USE.items()
    )
    return f"""\
# written by tests/imapserver_cyrus.py for one test run
configdirectory: {workdir}/config
defaultpartition: default
partition-default: {workdir}/spool
servername: localhost
syslog_prefix: followupd-test-{port}
cyrus_user: {run_as.name}
cyrus_group: {run_as.group}
idlesocket: {workdir}/config/socket/idle
lmtpsocket: {workdir}/config/socket/lmtp
notifysocket: {workdir}/config/socket/notify

# Logins: PLAIN and LOGIN only, never in clear text before STARTTLS, checked by the
# harness's answer to libsasl2's saslauthd requests; a refused login answers at once.
allowplaintext: no
sasl_pwcheck_method: saslauthd
sasl_saslauthd_path: {workdir}/saslauthd/mux
sasl_mech_list: PLAIN LOGIN
failedloginpause: 0
tls_server_cert: {workdir}/tls/server.pem
tls_server_key: {workdir}/tls/server.key

# Folders as a user of Dovecot sees them: at the top level, "/" between levels; every user
# gets their INBOX and the special-use folders at the first login.
altnamespace: yes
unixhierarchysep: yes
autocreate_quota: 0
autocreate_inbox_folders: {folders}
autocreate_subscribe_folders: {folders}
{special}
# Per-user counters (Cyrus's "conversations", as large installations run it): UIDVALIDITY
# and MODSEQ values come from them, so a folder rebuilt twice in one second still gets a new
# UIDVALIDITY; without them it would be the clock's second, plus one.
conversations: yes

# Raw 8-bit bytes in a header are kept as written, as Dovecot keeps them: the mailbox
# source must read them (by default Cyrus turns each into an "X").
reject8bit: no
munge8bit: no

# IDLE is woken by idled (a DAEMON below); without it, a look every second.
imapidlepoll: 1s
"""


def _cyrus_conf(workdir: Path, programs: CyrusPrograms, imap_port: int, imaps_port: int) -> str:
    config = workdir / "imapd.conf"
    return f"""\
# written by tests/imapserver_cyrus.py for one test run
START {{
  recover cmd="{CYRUS_TOOLS}/ctl_cyrusdb -C {config} -r"
}}
SERVICES {{
  imap cmd="{programs.imapd} -C {config}" listen="{HOST}:{imap_port}" prefork=0
  imaps cmd="{programs.imapd} -s -C {config}" listen="{HOST}:{imaps_port}" prefork=0
}}
DAEMON {{
  idled cmd="{programs.idled} -C {config}"
  ready cmd="/bin/sh {workdir}/ready.sh"
}}
"""


def _ready_script(fifo: Path) -> str:
    """The master starts its DAEMONs once it listens on every service: one of them says so."""
    return f"""\
# written by tests/imapserver_cyrus.py: tells the harness that Cyrus's master listens
echo READY > '{fifo}'
exec sleep infinity  # a DAEMON that ends is started again; the master stops it at the end
"""


def _wait_until_ready(process: subprocess.Popen[bytes], fifo: int, server: CyrusServer) -> None:
    """Wait for the ready DAEMON's line on `fifo`, or the master's exit; then log in."""
    deadline = time.monotonic() + TIMEOUT_SECONDS
    exited = os.pidfd_open(process.pid)
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(fifo, selectors.EVENT_READ)
            selector.register(exited, selectors.EVENT_READ)
            while True:
                remaining = deadline - time.monotonic()
                events = selector.select(remaining) if remaining > 0 else []
                if not events:
                    raise RuntimeError(f"Cyrus was not ready in {TIMEOUT_SECONDS:.0f} s")
                if any(key.fileobj == exited for key, _ in events):
                    raise RuntimeError(f"Cyrus's master exited with status {process.wait()}")
                if b"READY" in os.read(fifo, 4096):
                    break
    finally:
        os.close(exited)
    for user in (OWNER, SECOND_OWNER):  # logs in: TLS, SASL and autocreation work
        server.prepare(user)


@contextlib.contextmanager
def throwaway_cyrus() -> Iterator[CyrusServer]:
    """Yield a running Cyrus, empty but for the mailboxes of OWNER and SECOND_OWNER."""
    programs = find_cyrus()
    _check_unpacked(programs)
    version = cyrus_version(programs.master)
    if version[:1] != (3,):
        raise RuntimeError(
            f"Cyrus {'.'.join(map(str, version))}: tests/imapserver_cyrus.py writes Cyrus 3's "
            "configuration (Debian 12's is 3.6)"
        )
    run_as = _run_as()
    workdir = Path(tempfile.mkdtemp(prefix="followupd-cyrus-", dir=_memory_backed_tmp()))
    process: subprocess.Popen[bytes] | None = None
    stack = contextlib.ExitStack()
    try:
        for sub in ("bin", "config", "config/socket", "config/log", "spool", "tls", "saslauthd"):
            (workdir / sub).mkdir()
        if programs.imapd.is_relative_to(UNPACKED):  # maybe in a folder the server's user
            programs = replace(  # cannot enter: copies of its own
                programs,
                imapd=Path(shutil.copy2(programs.imapd, workdir / "bin")),
                idled=Path(shutil.copy2(programs.idled, workdir / "bin")),
            )
        ca_file = make_certificate_authority(workdir / "ca")
        _make_server_certificate(workdir / "tls", ca_file)
        server = CyrusServer(
            workdir, _free_port(), _free_port(), ca_file, version, programs=programs, run_as=run_as
        )
        (workdir / "imapd.conf").write_text(
            _imapd_conf(workdir, run_as, server.imap_port), encoding="utf-8"
        )
        (workdir / "cyrus.conf").write_text(
            _cyrus_conf(workdir, programs, server.imap_port, server.imaps_port), encoding="utf-8"
        )
        fifo_path = workdir / "ready.fifo"
        os.mkfifo(fifo_path, 0o600)
        (workdir / "ready.sh").write_text(_ready_script(fifo_path), encoding="utf-8")
        if os.geteuid() == 0:
            for path in [workdir, *workdir.rglob("*")]:
                os.chown(path, run_as.uid, run_as.gid)
        # read-write: the harness holds a writer too, so the FIFO never reads as closed
        fifo = os.open(fifo_path, os.O_RDWR | os.O_NONBLOCK)
        stack.callback(os.close, fifo)
        stack.callback(_PasswordCheck(workdir / "saslauthd/mux").close)
        root = os.geteuid() == 0
        process = subprocess.Popen(
            [
                str(programs.master), "-C", str(workdir / "imapd.conf"),
                "-M", str(workdir / "cyrus.conf"), "-p", str(workdir / "master.pid"),
                "-L", str(server.log),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=workdir,
            start_new_session=True,  # its own process group: every child is stopped with it
            user=run_as.uid if root else None,
            group=run_as.gid if root else None,
            extra_groups=[] if root else None,
        )  # fmt: skip
        try:
            _wait_until_ready(process, fifo, server)
        except Exception as exc:
            raise RuntimeError(f"{exc}\n{server.log_tail()}") from exc
        yield server
    finally:
        try:
            if process is not None:
                _stop(process)
        finally:
            stack.close()
            shutil.rmtree(workdir, ignore_errors=True)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the master (it stops its children), then to what is left of its group."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
