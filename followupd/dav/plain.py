"""WebDAV requests with the standard library alone, for the plain case; NotPlain otherwise.

The caldav library, its HTTP client and lxml take longer to import than a
sync after one change takes to run. A sync whose calendars are known (their
URLs and tokens stored) asks them what changed through this module instead:
one keep-alive connection, TLS verified (the system's certificates, or
``ca_file``), HTTP Basic login after the server's 401 asks for it, XML read
by xml.etree. Whatever is not that plain case raises NotPlain before
anything is taken from it, and the caller asks again through the caldav
library, which knows every server's quirks: a redirect, a login scheme
other than Basic, a proxy to go through, an answer it cannot be sure to
read as the library would.

A server that does not answer in time (TimeoutError) is not asked again
through the library, which would wait as long: that is the server's failure.
The password is only ever sent in the Authorization header, never put in an
error or a log line.
"""

from __future__ import annotations

import base64
import http.client
import re
import ssl
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote, unquote, urlparse, urlsplit, urlunparse
from xml.etree import ElementTree

from followupd import __version__

DAV = "{DAV:}"
CALDAV = "{urn:ietf:params:xml:ns:caldav}"
DEFAULT_PORTS = {"http": 80, "https": 443}
XML = "application/xml; charset=utf-8"
# a path as servers name objects (UID.ics): where the library's quoting and
# unquoting of an href leaves it as it is, so both read it alike
PLAIN_PATH = re.compile(r"/(?:[A-Za-z0-9_.~-]+/?)*")
# a status line in a multistatus: "HTTP/1.1 200 OK"
STATUS = re.compile(r"HTTP/\d\.\d (\d{3})(?: .*)?")


class NotPlain(Exception):
    """Not the plain case: ask through the caldav library instead (nothing was taken)."""


class Refused(NotPlain):
    """The server answered the request with an error (4xx but a login's 401, 5xx): the
    library's same request would fail alike."""


def canonical(url: str) -> str:
    """`url` as the caldav library's ``URL.canonical()`` spells it: how followupd stores URLs.

    No login in it, the port always written, double slashes made single, the
    path quoted anew (``@`` as ``%40``), https when no scheme is given.
    """
    parts = urlparse(url)
    scheme = parts.scheme or "https"
    netloc, path = parts.netloc, parts.path
    if "@" in netloc:  # a login in the URL: the library keeps host and port only
        netloc = f"{parts.hostname}:{parts.port or DEFAULT_PORTS[parts.scheme]}"
        path = path.replace("//", "/")  # and makes slashes single twice, "///" -> "/"
    elif netloc and ":" not in netloc and scheme in DEFAULT_PORTS:
        netloc += f":{DEFAULT_PORTS[scheme]}"
    path = quote(unquote(path.replace("//", "/")), safe="/")
    return urlunparse((scheme, netloc, path, parts.params, parts.query, parts.fragment))


def plain_path(href: str) -> str:
    """The path `href` names, when it is a plain one (see PLAIN_PATH); NotPlain otherwise."""
    if not is_plain(href):
        raise NotPlain(f"an href this module leaves to the library: {href!r}")
    return href


class PlainDav:
    """One server, over one connection: `request` a path, get its answer or NotPlain."""

    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        ca_file: Path | None = None,
        timeout: float = 30,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname or parts.username:
            raise NotPlain("not an http(s) URL this module reaches")
        if _proxied(parts.scheme, parts.hostname):
            raise NotPlain("a proxy is configured for this server")
        self.scheme, self.host = parts.scheme, parts.hostname
        self.port = parts.port or DEFAULT_PORTS[parts.scheme]
        login = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        self._authorization = f"Basic {login}"
        self._logged_in = False  # Basic is sent once the server asked for it
        self.ca_file, self.timeout = ca_file, timeout
        self._connection: http.client.HTTPConnection | None = None

    def reaches(self, url: str) -> bool:
        """Whether `url` is on this server (scheme, host and port): what requests can ask."""
        parts = urlsplit(url)
        port = parts.port or DEFAULT_PORTS.get(parts.scheme)
        return (parts.scheme, parts.hostname, port) == (self.scheme, self.host, self.port)

    def __enter__(self) -> PlainDav:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def multistatus(
        self, method: str, path: str, body: bytes, headers: Mapping[str, str] | None = None
    ) -> ElementTree.Element:
        """The 207 Multi-Status answering `method` on `path`, parsed; NotPlain otherwise."""
        status, answer = self.request(method, path, body, {"Content-Type": XML, **(headers or {})})
        if status >= 400 and status != 401:
            raise Refused(f"{method} {path} answered {status}")
        if status != 207:
            raise NotPlain(f"{method} {path} answered {status}")
        if b"<!DOCTYPE" in answer or b"<!ENTITY" in answer:  # no entity to expand, then
            raise NotPlain("an answer declaring a document type")
        try:
            root = ElementTree.fromstring(answer)  # noqa: S314 (no DTD: see above)
        except ElementTree.ParseError as error:
            raise NotPlain(f"an answer that is not well-formed XML: {error}") from None
        if root.tag != DAV + "multistatus":
            raise NotPlain(f"an answer that is not a multistatus: {root.tag}")
        return root

    def request(
        self, method: str, path: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, bytes]:
        """Status and body of `method` on `path`; a 401 asking for Basic is answered once."""
        status, challenge, answer = self._send(method, path, body, headers)
        if status == 401 and not self._logged_in:
            if not _asks_for_basic(challenge):
                raise NotPlain("the server asks for a login other than Basic")
            self._logged_in = True
            status, challenge, answer = self._send(method, path, body, headers)
        if status in (401, 403) or 300 <= status < 400:
            raise NotPlain(f"{method} {path} answered {status}")
        return status, answer

    def _send(
        self, method: str, path: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, str, bytes]:
        sent = {"User-Agent": f"followupd/{__version__}", **headers}
        if self._logged_in:
            sent["Authorization"] = self._authorization
        try:
            connection = self._connect()
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            answer = response.read()
        except TimeoutError:  # the library would wait as long again: the server's failure
            self.close()
            raise
        except (OSError, http.client.HTTPException) as error:
            self.close()
            raise NotPlain(f"{method} {path}: {type(error).__name__}") from None
        if response.will_close:
            self.close()
        return response.status, response.getheader("WWW-Authenticate") or "", answer

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            if self.scheme == "https":
                context = ssl.create_default_context(
                    cafile=str(self.ca_file) if self.ca_file else None
                )
                self._connection = http.client.HTTPSConnection(
                    self.host, self.port, timeout=self.timeout, context=context
                )
            else:
                self._connection = http.client.HTTPConnection(
                    self.host, self.port, timeout=self.timeout
                )
        return self._connection


def _asks_for_basic(challenge: str) -> bool:
    """Whether the library would log in with Basic: offered, and Digest not (it prefers Digest)."""
    schemes = {part.strip().split(" ")[0].lower() for part in challenge.split(",")}
    return "basic" in schemes and "digest" not in schemes


def _proxied(scheme: str, host: str) -> bool:
    """Whether the environment names a proxy for this server (the library would use it)."""
    proxies = urllib.request.getproxies()
    if not (proxies.get(scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(host)


Response = tuple[str, str | None, list[ElementTree.Element]]  # href, status, properties


def responses(root: ElementTree.Element, plain: bool = True) -> list[Response]:
    """Each <response> of a multistatus: its href (a plain one, unless `plain` is False),
    its status code if it has one (a 404 without properties, say), and its
    properties of status 200 (those of status 404, which it does not have,
    are left out).

    NotPlain for anything else in it: several hrefs, another property status,
    an element the library would have to judge.
    """
    found = []
    for response in root.iterfind(DAV + "response"):
        hrefs: list[str] = []
        status: str | None = None
        properties: list[ElementTree.Element] = []
        for child in response:
            if child.tag == DAV + "href":
                hrefs.append(child.text or "")
            elif child.tag == DAV + "status":
                status = status_code(child.text)
            elif child.tag == DAV + "propstat":
                code = status_code(_text(child.find(DAV + "status")))
                if code == "200":
                    properties.extend(child.iterfind(DAV + "prop/*"))
                elif code != "404":  # 404: properties it does not have, left out
                    raise NotPlain(f"a property answered {code}")
            else:
                raise NotPlain(f"an element in a response: {child.tag}")
        if len(hrefs) != 1:
            raise NotPlain("a response naming no href or several")
        found.append((plain_path(hrefs[0]) if plain else hrefs[0], status, properties))
    return found


def is_plain(href: str) -> bool:
    return bool(PLAIN_PATH.fullmatch(href)) and "//" not in href


def status_code(line: str | None) -> str:
    """The code of a status line ("HTTP/1.1 404 Not Found" -> "404"); NotPlain if none."""
    match = STATUS.fullmatch((line or "").strip())
    if match is None:
        raise NotPlain(f"a status line: {line!r}")
    return match.group(1)


def _text(element: ElementTree.Element | None) -> str | None:
    return None if element is None else element.text
