"""A raw TCP server on 127.0.0.1 that answers however a test says, byte by byte.

Each connection's request (head and Content-Length body) is read and recorded, then handed to
the test's ``Script``, which writes whatever it likes to the socket: a huge body, a trickle, a
reset, nothing at all. ``stop`` is set at teardown so scripts that wait or trickle end.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from raw_server import RawServer


@dataclass(frozen=True)
class Received:
    head: bytes
    body: bytes

    @property
    def path(self) -> str:
        return self.head.split(b" ", 2)[1].decode("latin-1")


Script = Callable[[socket.socket, Received, threading.Event], None]


def answer(status: int, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    """A whole HTTP/1.1 answer with a Content-Length."""
    lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def reset(conn: socket.socket) -> None:
    """Closes with a TCP RST instead of a FIN."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


class HostileServer(RawServer[Received]):
    """``with HostileServer(script) as server:`` answers HTTP requests on ``server.url``."""

    def __init__(self, script: Script) -> None:
        super().__init__(_requests, script)
        self.url = f"http://127.0.0.1:{self.port}"


def _requests(conn: socket.socket) -> Iterator[Received]:
    while (request := _read_request(conn)) is not None:
        yield request


def _read_request(conn: socket.socket) -> Received | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        body += chunk
    return Received(head, body)
