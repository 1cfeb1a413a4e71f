"""The HTTP/1.1 front of one emulated region: keep-alive, chunked uploads, optional TLS.

Standard library only. One acceptor thread per region and one daemon thread per connection;
:meth:`RegionServer.stop` wakes the acceptor, shuts down every open connection and joins the
threads, so nothing outlives the emulator.
"""

from __future__ import annotations

import contextlib
import logging
import re
import selectors
import socket
import socketserver
import ssl
import threading
from collections.abc import Callable
from email.message import Message
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

from ._wire import GATEWAY, Headers, Request, Response, error_response, new_trace_id

__all__ = ["BodyError", "ClientGone", "RegionServer", "read_body"]

log = logging.getLogger(__name__)

_MAX_BODY: Final = 64 * 1024 * 1024
_MAX_LINE: Final = 64 * 1024
_CHUNK_SIZE: Final = re.compile(rb"[0-9A-Fa-f]{1,16}")
_JOIN_TIMEOUT: Final = 5.0


class _Stream(Protocol):
    def read(self, size: int, /) -> bytes: ...

    def readline(self, size: int, /) -> bytes: ...


class BodyError(Exception):
    """A request body that cannot be read: answered with ``status``, then the link is closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ClientGone(Exception):
    """The client closed the connection in the middle of its request."""


def read_body(rfile: _Stream, headers: Message) -> bytes:
    """Reads a whole request body: ``Content-Length`` or ``Transfer-Encoding: chunked``.

    Raises:
        BodyError: malformed framing, an unsupported coding, or more than 64 MiB.
        ClientGone: the stream ended early.
    """
    transfer_encoding = headers.get("Transfer-Encoding")
    if transfer_encoding is not None:
        # RFC 9112 section 6.1: Transfer-Encoding overrides Content-Length; chunked comes last.
        codings = [c.strip().lower() for c in transfer_encoding.split(",")]
        if codings != ["chunked"]:
            raise BodyError(501, f"Unsupported Transfer-Encoding {transfer_encoding!r}")
        return _read_chunked(rfile)
    length = headers.get("Content-Length")
    if length is None:
        return b""
    if not length.strip().isdigit():
        raise BodyError(400, "Malformed Content-Length")
    size = int(length)
    if size > _MAX_BODY:
        raise BodyError(413, "Request body too large")
    return _read_exactly(rfile, size)


def _read_exactly(rfile: _Stream, size: int) -> bytes:
    data = rfile.read(size)
    if len(data) < size:
        raise ClientGone
    return data


def _read_line(rfile: _Stream) -> bytes:
    line = rfile.readline(_MAX_LINE + 1)
    if not line:
        raise ClientGone
    if len(line) > _MAX_LINE:
        raise BodyError(400, "Chunk line too long")
    return line


def _read_chunked(rfile: _Stream) -> bytes:
    # RFC 9112 section 7.1: size in hex, optional extensions after ';', data, CRLF; a zero
    # size ends the data and trailer fields follow up to an empty line.
    chunks: list[bytes] = []
    total = 0
    while True:
        size_field = _read_line(rfile).split(b";", 1)[0].strip()
        if not _CHUNK_SIZE.fullmatch(size_field):
            raise BodyError(400, "Malformed chunk size")
        size = int(size_field, 16)
        if size == 0:
            break
        total += size
        if total > _MAX_BODY:
            raise BodyError(413, "Request body too large")
        chunks.append(_read_exactly(rfile, size))
        if _read_exactly(rfile, 2) != b"\r\n":
            raise BodyError(400, "Chunk data not followed by CRLF")
    while _read_line(rfile) not in (b"\r\n", b"\n"):
        pass  # trailer fields: nothing in Falcon's API uses them
    return b"".join(chunks)


class _Handler(BaseHTTPRequestHandler):
    """Reads one request whole, lets the service answer, writes the answer in one send."""

    protocol_version = "HTTP/1.1"
    server_version = "falcon-emulator"
    sys_version = ""
    disable_nagle_algorithm = True
    wbufsize = -1  # buffered, so status, headers and body leave together at the flush
    server: RegionServer

    def version_string(self) -> str:
        return self.server_version

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _dispatch(self) -> None:
        try:
            body = read_body(self.rfile, self.headers)
        except ClientGone:
            self.close_connection = True
            return
        except BodyError as exc:
            # Where the next request starts is unknown: answer, then close.
            self.close_connection = True
            self._send(
                error_response(
                    exc.status,
                    exc.message,
                    trace_id=new_trace_id(),
                    started=0.0,
                    powered_by=GATEWAY,
                )
            )
            return
        if "://" in self.path:  # absolute-form request target (RFC 9112 section 3.2.2)
            try:
                parts = urlsplit(self.path)
            except ValueError:  # e.g. an unclosed IPv6 bracket
                self.close_connection = True
                self._send(
                    error_response(
                        400,
                        "Malformed request target",
                        trace_id=new_trace_id(),
                        started=0.0,
                        powered_by=GATEWAY,
                    )
                )
                return
            path, query = parts.path or "/", parts.query
        else:
            path, _, query = self.path.partition("#")[0].partition("?")
        request = Request(
            region=self.server.region,
            method=self.command,
            path=path,
            query=query,
            headers=Headers(self.headers.items()),
            body=body,
            client_ip=str(self.client_address[0]),
        )
        response = self.server.service_handle(request)
        if response.drop:
            self.close_connection = True
            return
        self._send(response)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s: " + format, self.server.region, self.client_address[0], *args)


class RegionServer(HTTPServer):
    """One region's HTTP(S) server on an ephemeral port.

    Args:
        host: the address to listen on.
        port: the port, 0 for an ephemeral one.
        region: the region this server answers for.
        handle: the service's request handler.
        ssl_context: a server-side TLS context, or None for plain HTTP.
    """

    # socketserver's default backlog of 5 drops a burst of connecting threads (the kernel
    # makes them retry a second later); Falcon's gateway takes them all.
    request_queue_size = 128

    def __init__(
        self,
        host: str,
        port: int,
        region: str,
        handle: Callable[[Request], Response],
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.region = region
        self.service_handle = handle
        self._ssl_context = ssl_context
        self._lock = threading.Lock()
        self._closing = False
        self._connections: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._acceptor: threading.Thread | None = None
        super().__init__((host, port), _Handler)
        self._wake_r, self._wake_w = socket.socketpair()
        scheme = "https" if ssl_context is not None else "http"
        url_host = f"[{host}]" if ":" in host else host
        self.url = f"{scheme}://{url_host}:{self.server_port}"

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, a DNS lookup that can take seconds.
        socketserver.TCPServer.server_bind(self)
        host, port = self.socket.getsockname()[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def start(self) -> None:
        """Starts accepting connections in a daemon thread."""
        self._acceptor = threading.Thread(
            target=self._accept_loop, name=f"falcon-emulator-{self.region}", daemon=True
        )
        self._acceptor.start()

    def stop(self) -> None:
        """Stops accepting, closes every open connection and joins the server's threads."""
        with self._lock:
            self._closing = True
            for conn in self._connections:
                # The base class's shutdown: SSLSocket's own would drop its TLS state under
                # the feet of the handler thread still reading from it. OSError: the peer
                # already closed it.
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(conn, socket.SHUT_RDWR)
            threads = list(self._threads)
        self._wake_w.send(b"\0")
        if self._acceptor is not None:
            self._acceptor.join()
        for thread in threads:
            thread.join(_JOIN_TIMEOUT)
        self.server_close()
        self._wake_r.close()
        self._wake_w.close()

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self.socket, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while True:
                ready = [key.fileobj for key, _ in selector.select()]
                with self._lock:
                    if self._closing:
                        return
                if self.socket in ready:
                    self._accept()

    def _accept(self) -> None:
        try:
            conn, address = self.socket.accept()
        except OSError as exc:  # the client gave up before we accepted
            log.debug("%s: accept failed: %s", self.region, exc)
            return
        conn.setblocking(True)
        thread = threading.Thread(
            target=self._serve, args=(conn, address), name=f"falcon-emulator-{self.region}-conn"
        )
        thread.daemon = True
        with self._lock:
            if self._closing:
                conn.close()
                return
            self._connections.add(conn)
            self._threads.add(thread)
        thread.start()

    def _serve(self, conn: socket.socket, address: Any) -> None:
        current = conn
        try:
            if self._ssl_context is not None:
                tls = self._ssl_context.wrap_socket(
                    conn, server_side=True, do_handshake_on_connect=False
                )
                with self._lock:
                    self._connections.discard(conn)
                    self._connections.add(tls)
                    current = tls
                    closing = self._closing
                if closing:
                    return
                tls.do_handshake()
            self.finish_request(current, address)
        except OSError as exc:  # resets, TLS failures: the client's problem, not the server's
            log.debug("%s: connection from %s ended: %s", self.region, address[0], exc)
        finally:
            with self._lock:
                self._connections.discard(current)
                self._threads.discard(threading.current_thread())
            self.shutdown_request(current)
