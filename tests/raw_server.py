"""A raw TCP server on 127.0.0.1 whose answers a test writes byte by byte, whatever the protocol.

Each message a client sends is read by the protocol's reader, recorded, then handed to the test's
script, which writes whatever it likes to the socket: a huge body, a trickle, a reset, nothing at
all. ``stop`` is set at teardown so scripts that wait or trickle end, and every connection is shut
down so no thread waits for a next message. :mod:`hostile` reads HTTP requests with it,
:mod:`resp_server` Redis commands.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, Generic, TypeVar

__all__ = ["RawServer"]

M = TypeVar("M")


class RawServer(Generic[M]):
    """``with RawServer(messages, script) as server:`` serves on ``127.0.0.1:server.port``.

    Args:
        messages: the messages a connection carries, read as they come (ValueError: the
            client does not speak the protocol).
        script: answers one message: ``script(conn, message, stop)``.
    """

    def __init__(
        self,
        messages: Callable[[socket.socket], Iterator[M]],
        script: Callable[[socket.socket, M, threading.Event], None],
    ) -> None:
        self.messages = messages
        self.script = script
        self.received: list[M] = []
        self.connections = 0
        self.stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._open: list[socket.socket] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            self.connections += 1
            self._open.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            with conn:
                for message in self.messages(conn):
                    if self.stop.is_set():
                        return
                    self.received.append(message)
                    self.script(conn, message, self.stop)
        except (OSError, ValueError):  # the client went away, or did not speak the protocol
            return

    def __enter__(self: _S) -> _S:
        self._accepting.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop.set()
        self._accepting.join()
        self._listener.close()
        for conn in self._open:
            with contextlib.suppress(OSError):  # wakes a thread waiting for the next message
                conn.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=15)


_S = TypeVar("_S", bound="RawServer[Any]")
