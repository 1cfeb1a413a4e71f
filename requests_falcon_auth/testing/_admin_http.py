"""The admin API's HTTP server: loopback only, bodies read whole and bounded, quiet.

It reads each request, lets :class:`~requests_falcon_auth.testing._admin.AdminServer` answer,
and writes the answer with a ``Content-Length`` so connections stay alive. ``stop()`` closes
idle keep-alive connections and joins the handler threads.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Final

from ._admin_json import encode
from ._server import BodyError, ClientGone, read_body

if TYPE_CHECKING:
    from ._admin import AdminServer

    pass

__all__ = ["AdminServer"]


__all__ = ["AdminHttpServer", "HOST"]

log = logging.getLogger(__name__)

HOST: Final = "127.0.0.1"
_MAX_BODY: Final = 16 * 1024 * 1024
_TOO_LARGE: Final = "The body is larger than 16 MiB."
_JOIN_TIMEOUT: Final = 5.0


class _Handler(BaseHTTPRequestHandler):
    """Reads one request whole, lets the :class:`AdminServer` answer, writes the answer."""

    protocol_version = "HTTP/1.1"
    server_version = "falcon-emulator-admin"
    sys_version = ""
    disable_nagle_algorithm = True
    wbufsize = -1  # buffered: status, headers and body leave together at the flush
    server: AdminHttpServer

    def version_string(self) -> str:
        return self.server_version

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def handle_expect_100(self) -> bool:
        # Refuse a body too large before the client sends it, rather than after.
        return not self._refused_as_too_large() and super().handle_expect_100()

    def _refused_as_too_large(self) -> bool:
        length = self.headers.get("Content-Length", "").strip()
        if "Transfer-Encoding" in self.headers or not length.isdigit():
            return False  # read_body sees to chunked bodies and malformed lengths
        if int(length) <= _MAX_BODY:
            return False
        self.send_error(413, _TOO_LARGE)
        return True

    def _dispatch(self) -> None:
        if self._refused_as_too_large():
            return
        try:
            body = read_body(self.rfile, self.headers)
        except ClientGone:
            self.close_connection = True
            return
        except BodyError as exc:
            self.send_error(exc.status, f"{exc.message}.")
            return
        if len(body) > _MAX_BODY:
            self.send_error(413, _TOO_LARGE)
            return
        admin = self.server.admin
        status, headers, payload = admin.answer(
            self.command, self.path, self.headers.get("Host"), body
        )
        self._send(status, headers, payload)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Answers an unreadable request (also the base class's: a bad request line, oversized
        headers, an unknown method) in JSON, then closes the connection."""
        self.close_connection = True
        text = " ".join((message or self.responses.get(code, ("Error",))[0]).splitlines())
        self._send(code, (), encode({"error": text if text.endswith(".") else f"{text}."}))

    def _send(self, status: int, headers: tuple[tuple[str, str], ...], body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-store")
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # Request lines only, at DEBUG: nothing on stderr, and no body (bodies hold secrets).
        log.debug("admin %s: " + format, self.client_address[0], *args)


class AdminHttpServer(ThreadingHTTPServer):
    """The admin's HTTP server: one daemon thread per connection, every one closed at stop."""

    daemon_threads = True
    block_on_close = False  # close_connections() joins the threads, after closing their links
    request_queue_size = 64

    def __init__(self, port: int, admin: AdminServer) -> None:
        self.admin = admin
        self._lock = threading.Lock()
        self._closing = False
        self._links: set[socket.socket] = set()
        self._link_threads: set[threading.Thread] = set()
        super().__init__((HOST, port), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, a DNS lookup that can take seconds.
        socketserver.TCPServer.server_bind(self)
        self.server_name = HOST
        self.server_port = int(self.socket.getsockname()[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name="falcon-emulator-admin-conn",
            daemon=True,
        )
        with self._lock:
            if self._closing:
                self.shutdown_request(request)
                return
            self._links.add(request)
            self._link_threads.add(thread)
        thread.start()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._links.discard(request)
                self._link_threads.discard(threading.current_thread())

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A reset or a broken pipe: the client's business, and nothing for stderr.
        log.debug("admin: connection from %s failed", client_address[0], exc_info=True)

    def close_connections(self) -> None:
        """Shuts down every open connection and joins the threads serving them."""
        with self._lock:
            self._closing = True
            for conn in self._links:
                with contextlib.suppress(OSError):  # the peer closed it already
                    conn.shutdown(socket.SHUT_RDWR)
            threads = list(self._link_threads)
        for thread in threads:
            thread.join(_JOIN_TIMEOUT)
