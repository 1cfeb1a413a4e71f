"""A throwaway ``redis-server`` on a free loopback port, for the rows that share a token store.

Persistence off; ready when the server logs that it accepts connections (read from its output,
not polled for); terminated, then killed if need be, when the block ends. The benchmarks keep
their own launcher rather than import the test suite's.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from types import TracebackType
from typing import Final

__all__ = ["RedisServer"]

_READY: Final = b"Ready to accept connections"
_STOP_TIMEOUT: Final = 10.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """``with RedisServer() as server:`` serves on ``127.0.0.1:server.port``.

    Raises:
        RuntimeError: redis-server is not on PATH, or exited before it was ready.
    """

    def __init__(self) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            raise RuntimeError("redis-server is not on PATH (apt-get install -y redis-server)")
        self.executable = executable
        self.port = _free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._drain: threading.Thread | None = None

    def __enter__(self) -> RedisServer:
        command = [
            self.executable,
            *("--port", str(self.port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no", "--logfile", ""),
        ]
        # A resolved executable and fixed arguments: no shell, nothing from outside the run.
        process = subprocess.Popen(  # noqa: S603
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
            self._stop()
            tail = b"".join(log[-5:]).decode(errors="replace")
            raise RuntimeError(f"redis-server exited before it was ready:\n{tail}")
        # Keep reading so that the server never blocks on a full pipe.
        self._drain = threading.Thread(target=process.stdout.read, daemon=True)
        self._drain.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop()

    def _stop(self) -> None:
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
