"""The admin API's HTTP server: loopback only, bodies read whole and bounded, quiet.

It reads each request, lets :class:`~requests_falcon_auth.testing._admin.AdminServer` answer,
and writes the answer with a ``Content-Length`` so connections stay alive. ``stop()`` closes
idle keep-alive connections and joins the handler threads.

The admin's DNS-rebinding defence judges the host a request names, so a request must name one
host, plainly: an HTTP/1.1 request without ``Host``, with two, with one that is not
``host[:digits]``, or with an absolute-form target naming another host than its ``Host`` is
refused with 400 (RFC 9112 section 3.2), unread.
"""

from __future__ import annotations

import logging
import re
import socketserver
import threading
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from ._admin_json import encode
from ._http import TrackingHTTPServer, WholeRequestHandler, join_all

if TYPE_CHECKING:
    from ._admin import AdminServer

__all__ = ["AdminHttpServer", "HOST"]

log = logging.getLogger(__name__)

HOST: Final = "127.0.0.1"
_MAX_BODY: Final = 16 * 1024 * 1024
_TOO_LARGE: Final = "The body is larger than 16 MiB."
# RFC 9110 section 7.2 and RFC 3986 section 3.2: uri-host [ ":" port ], where port is *DIGIT.
_HOST: Final = re.compile(r"(?:\[[0-9A-Fa-f:.]*\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::[0-9]*)?")


class _BadHost(Exception):
    """The request does not name one host plainly; the message says what to send instead."""


def _named_host(version: str, hosts: list[str], target: str) -> str | None:
    """The one host a request names (None: an HTTP/1.0 request that names none).

    Raises:
        _BadHost: no ``Host`` on HTTP/1.1, several, a malformed one, or an absolute-form
            target whose host is malformed or another than the ``Host`` header's.
    """
    if len(hosts) > 1:
        raise _BadHost(f"The request carries {len(hosts)} Host headers; send exactly one")
    host = hosts[0].strip(" \t") if hosts else None
    if host is None and version != "HTTP/1.0":
        raise _BadHost(f"An {version} request needs a Host header, such as Host: {HOST}")
    if host is not None and not _HOST.fullmatch(host):
        raise _BadHost(f"Malformed Host header {host!r}: send a host and an optional numeric port")
    if "://" not in target:
        return host
    # Absolute-form: RFC 9112 section 3.2.2 makes the target's host the one the request names.
    try:
        authority = urlsplit(target).netloc
    except ValueError:
        raise _BadHost("Malformed request target") from None
    if not _HOST.fullmatch(authority):
        raise _BadHost(f"Malformed host {authority!r} in the request target; send a path")
    if host is not None and authority.lower() != host.lower():
        raise _BadHost(
            f"The request target names {authority!r} but the Host header {host!r}; "
            "send a path as the target, or name the same host in both"
        )
    return authority


class _Handler(WholeRequestHandler):
    """Reads one request whole, lets the :class:`AdminServer` answer, writes the answer."""

    server_version = "falcon-emulator-admin"
    server: AdminHttpServer

    def handle_expect_100(self) -> bool:
        # Refuse a bad Host or a body too large before the client sends the body, not after.
        return not self._refused_unread() and super().handle_expect_100()

    def _host(self) -> str | None:
        return _named_host(self.request_version, self.headers.get_all("Host", []), self.path)

    def _refused_unread(self) -> bool:
        """Answers a request refused on its head alone: True when it was (the link closes)."""
        try:
            self._host()
        except _BadHost as exc:
            self.send_error(400, str(exc))
            return True
        return self._refused_as_too_large()

    def _refused_as_too_large(self) -> bool:
        length = self.headers.get("Content-Length", "").strip()
        if "Transfer-Encoding" in self.headers or not length.isdigit():
            return False  # read_body sees to chunked bodies and malformed lengths
        if int(length) <= _MAX_BODY:
            return False
        self.send_error(413, _TOO_LARGE)
        return True

    def _dispatch(self) -> None:
        if self._refused_unread():
            return
        body = self._read_whole_body()
        if body is None:
            return
        if len(body) > _MAX_BODY:
            self.send_error(413, _TOO_LARGE)
            return
        admin = self.server.admin
        status, headers, payload = admin.answer(self.command, self.path, self._host(), body)
        self._send(status, headers, payload)

    def _refuse(self, status: int, message: str) -> None:
        self.send_error(status, f"{message}.")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Answers an unreadable request (also the base class's: a bad request line, oversized
        headers, an unknown method) in JSON, then closes the connection."""
        self.close_connection = True
        text = " ".join((message or self.responses.get(code, ("Error",))[0]).splitlines())
        self._send(code, (), encode({"error": text if text.endswith(".") else f"{text}."}))

    def _send(self, status: int, headers: tuple[tuple[str, str], ...], body: bytes) -> None:
        json_headers = (("Content-Type", "application/json"), ("Cache-Control", "no-store"))
        self._write(status, (*json_headers, *headers), body)

    def log_message(self, format: str, *args: Any) -> None:
        # Request lines only, at DEBUG: nothing on stderr, and no body (bodies hold secrets).
        log.debug("admin %s: " + format, self.client_address[0], *args)


class AdminHttpServer(socketserver.ThreadingMixIn, TrackingHTTPServer):
    """The admin's HTTP server: one daemon thread per connection, every one closed at stop."""

    daemon_threads = True
    block_on_close = False  # close_connections() joins the threads, after closing their links
    request_queue_size = 64

    def __init__(self, port: int, admin: AdminServer) -> None:
        self.admin = admin
        super().__init__((HOST, port), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name="falcon-emulator-admin-conn",
            daemon=True,
        )
        if not self._track(request, thread):
            self.shutdown_request(request)
            return
        thread.start()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._untrack(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A reset or a broken pipe: the client's business, and nothing for stderr.
        log.debug("admin: connection from %s failed", client_address[0], exc_info=True)

    def close_connections(self) -> None:
        """Shuts down every open connection and joins the threads serving them."""
        join_all(self._shut_connections())
