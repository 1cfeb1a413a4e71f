"""A raw TCP server on 127.0.0.1 that speaks just enough RESP to answer however a test says.

A broken or hostile Redis, where redis-server cannot be made to misbehave: each command a client
sends (an array of bulk strings) is read and recorded, then handed to the test's ``Script``,
which writes whatever it likes to the socket: a reply of any RESP type, a trickle, nothing at
all. ``stop`` is set at teardown so scripts that wait or trickle end. The pattern is that of
:mod:`hostile` (raw HTTP answers), for Redis's protocol.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from typing import BinaryIO, Final

from raw_server import RawServer

__all__ = ["HELLO", "Command", "RespServer", "Script", "answer_with", "hang", "trickle"]

Command = list[bytes]
# Writes the answer to one command (or none) on the connection; ``stop`` is set at teardown.
Script = Callable[[socket.socket, Command, threading.Event], None]

# What a Redis 7 answers to HELLO 3: a map with the protocol it switched to.
HELLO: Final = b"%3\r\n+server\r\n+redis\r\n+version\r\n+7.0.0\r\n+proto\r\n:3\r\n"
_HANDSHAKE: Final = {b"CLIENT": b"+OK\r\n", b"SELECT": b"+OK\r\n", b"PING": b"+PONG\r\n"}


def answer_with(reply: bytes | Script, *, hello: bytes = HELLO) -> Script:
    """A script that answers the connection handshake as Redis does (HELLO with ``hello``) and
    every other command with ``reply``: raw RESP bytes, or a script of its own."""

    def script(conn: socket.socket, command: Command, stop: threading.Event) -> None:
        name = command[0].upper() if command else b""
        if name == b"HELLO":
            conn.sendall(hello)
        elif name in _HANDSHAKE:
            conn.sendall(_HANDSHAKE[name])
        elif isinstance(reply, bytes):
            conn.sendall(reply)
        else:
            reply(conn, command, stop)

    return script


def trickle(conn: socket.socket, command: Command, stop: threading.Event) -> None:
    """An integer reply that never ends: one digit a second, until teardown. A per-read
    socket timeout longer than a second never fires."""
    conn.sendall(b":")
    while not stop.wait(1.0):
        conn.sendall(b"1")


def hang(conn: socket.socket, command: Command, stop: threading.Event) -> None:
    """No answer at all, until teardown."""
    stop.wait()


class RespServer(RawServer[Command]):
    """``with RespServer(script) as server:`` answers Redis commands on ``127.0.0.1:server.port``."""

    def __init__(self, script: Script) -> None:
        super().__init__(_commands, script)

    def commands(self) -> list[bytes]:
        """The name of every command received so far, in order."""
        return [command[0].upper() for command in self.received if command]


def _commands(conn: socket.socket) -> Iterator[Command]:
    with conn.makefile("rb") as reader:
        while (command := _read_command(reader)) is not None:
            yield command


def _read_command(reader: BinaryIO) -> Command | None:
    """One command as clients send it (``*N`` then N bulk strings); None at end of stream."""
    header = reader.readline()
    if not header:
        return None
    if not header.startswith(b"*"):
        raise ValueError("not a RESP command")
    command = []
    for _ in range(int(header[1:])):
        length = int(reader.readline()[1:])
        command.append(reader.read(length + 2)[:length])
    return command
