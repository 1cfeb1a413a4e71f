"""A throwaway ``redis-server`` on a free loopback port, for tests and benchmarks of fleets.

Started with persistence off; ready when the server logs that it accepts connections (read from
its output, not polled for); stopped (terminated, then killed if need be) when the block ends.
``stop()`` then ``start()`` again keeps the port, to take Redis away and bring it back.

Test infrastructure, not part of the package: the tests import it as ``redis_launcher`` (pytest
puts ``tests/`` on the path), the benchmarks as ``tests.redis_launcher`` (``python -m
benchmarks`` runs from the repository root).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from types import TracebackType
from typing import Final

__all__ = ["INSTALL_HINT", "RedisServer", "RedisUnavailable"]

_READY: Final = b"Ready to accept connections"
_STOP_TIMEOUT: Final = 10.0
INSTALL_HINT: Final = "apt-get install -y redis-server (or brew install redis)"


class RedisUnavailable(RuntimeError):
    """redis-server is not installed or did not start."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """``with RedisServer() as server:`` serves on ``127.0.0.1:server.port``.

    Args:
        executable: the redis-server to run (default: the one on PATH).

    Raises:
        RedisUnavailable: redis-server is not installed, or exited before it was ready.
    """

    def __init__(self, executable: str | None = None) -> None:
        found = executable or shutil.which("redis-server")
        if found is None:
            raise RedisUnavailable(f"redis-server is not installed: {INSTALL_HINT}")
        self.executable = found
        self.port = _free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._drain: threading.Thread | None = None

    def start(self) -> None:
        """Starts the server and returns once it accepts connections."""
        command = [
            self.executable,
            *("--port", str(self.port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no", "--logfile", ""),
        ]
        # A fixed argument list with a resolved executable: no shell, no user input.
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        self._process = process
        assert process.stdout is not None
        log = []
        for line in process.stdout:  # blocks until the server logs; ends if it exits
            log.append(line)
            if _READY in line:
                break
        else:
            self.stop()
            tail = b"".join(log[-5:]).decode(errors="replace")
            raise RedisUnavailable(f"redis-server exited before it was ready:\n{tail}")
        # Keep reading so that the server never blocks on a full pipe.
        self._drain = threading.Thread(target=process.stdout.read, daemon=True)
        self._drain.start()

    def stop(self) -> None:
        """Stops the server (idempotent)."""
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if self._drain is not None:
            self._drain.join(_STOP_TIMEOUT)
            self._drain = None
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
