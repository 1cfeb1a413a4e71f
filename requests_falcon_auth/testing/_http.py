"""HTTP/1.1 plumbing shared by the region servers and the admin server.

Both read a request whole (bounded, ``Content-Length`` or chunked), answer it, and write the
answer in one send with a ``Content-Length`` so connections stay alive; both serve each
connection on a daemon thread they track, so that stopping closes every link and joins every
thread. Only what they answer, and how they accept connections, differs: that stays in
``_server`` and ``_admin_http``.
"""

from __future__ import annotations

import contextlib
import re
import socket
import socketserver
import threading
from collections.abc import Iterable
from email.message import Message
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Final, Protocol

__all__ = [
    "BodyError",
    "ClientGone",
    "TrackingHTTPServer",
    "WholeRequestHandler",
    "join_all",
    "read_body",
]

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


class WholeRequestHandler(BaseHTTPRequestHandler):
    """Reads a request whole, has :meth:`_dispatch` answer it, writes the answer in one send.

    A subclass sets ``server_version`` and writes ``_dispatch`` and ``_refuse``.
    """

    protocol_version = "HTTP/1.1"
    sys_version = ""
    disable_nagle_algorithm = True
    wbufsize = -1  # buffered, so status, headers and body leave together at the flush

    def version_string(self) -> str:
        return self.server_version

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _dispatch(self) -> None:
        raise NotImplementedError

    def _refuse(self, status: int, message: str) -> None:
        """Answers a request that cannot be read (the connection closes after it)."""
        raise NotImplementedError

    def _read_whole_body(self) -> bytes | None:
        """The request's body; None when the client left or the body was refused."""
        try:
            return read_body(self.rfile, self.headers)
        except ClientGone:
            self.close_connection = True
            return None
        except BodyError as exc:
            # Where the next request starts is unknown: answer, then close.
            self.close_connection = True
            self._refuse(exc.status, exc.message)
            return None

    def _write(self, status: int, headers: Iterable[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class TrackingHTTPServer(HTTPServer):
    """An HTTP server that knows every open connection and the thread serving it."""

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        self._lock = threading.Lock()
        self._closing = False
        self._connections: set[socket.socket] = set()
        # Not ``_threads``: socketserver.ThreadingMixIn keeps its own under that name.
        self._connection_threads: set[threading.Thread] = set()
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, a DNS lookup that can take seconds.
        socketserver.TCPServer.server_bind(self)
        host, port = self.socket.getsockname()[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def _track(self, conn: socket.socket, thread: threading.Thread) -> bool:
        """Counts a new connection and its (unstarted) thread in; False once stopping."""
        with self._lock:
            if self._closing:
                return False
            self._connections.add(conn)
            self._connection_threads.add(thread)
            return True

    def _untrack(self, conn: socket.socket) -> None:
        """Counts a finished connection and the calling thread out."""
        with self._lock:
            self._connections.discard(conn)
            self._connection_threads.discard(threading.current_thread())

    def _shut_connections(self) -> list[threading.Thread]:
        """Refuses new connections, shuts down the open ones; the threads still serving them."""
        with self._lock:
            self._closing = True
            for conn in self._connections:
                # The base class's shutdown: SSLSocket's own would drop its TLS state under
                # the feet of the handler thread still reading from it. OSError: the peer
                # already closed it.
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(conn, socket.SHUT_RDWR)
            return list(self._connection_threads)


def join_all(threads: Iterable[threading.Thread]) -> None:
    """Joins each thread, waiting at most a few seconds for each."""
    for thread in threads:
        thread.join(_JOIN_TIMEOUT)
