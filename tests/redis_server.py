"""A throwaway ``redis-server`` on a free loopback port, and the worker process of fleet tests.

The worker lives here, not in the test module, so that "spawn" children import little.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import pytest
import redis
import requests

from requests_falcon_auth import FalconAuth
from requests_falcon_auth.redis import RedisTokenCache

INSTALL_HINT = "install it with: apt-get install -y redis-server (or brew install redis)"
_START_TIMEOUT = 10.0


def redis_server_executable() -> str:
    """The redis-server path; a skip (a failure with CI=true) when it is not installed."""
    executable = shutil.which("redis-server")
    if executable is None:
        message = f"redis-server is not installed; {INSTALL_HINT}"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)
    return executable


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """``with RedisServer(exe) as server:`` serves on ``server.port`` until the block ends.

    ``stop()`` and ``start()`` again keep the port, to take Redis away and bring it back.
    """

    def __init__(self, executable: str) -> None:
        self.executable = executable
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        process = subprocess.Popen(
            [
                self.executable,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._process = process
        # Polling is how one waits for another program to start listening; bounded.
        deadline = time.monotonic() + _START_TIMEOUT
        while not _answers_ping(self.port):
            if process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"redis-server did not start on port {self.port}")
            time.sleep(0.01)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

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


@dataclass(frozen=True)
class FleetJob:
    """What one worker process does: build its own client, cache and auth, then GET ``url``."""

    redis_port: int
    clouds: dict[str, str]
    client_id: str
    client_secret: str
    url: str
    calls: int
    lock_ttl: float


def fleet_worker(job: FleetJob, start: Any, go: Any, results: Any) -> None:
    """Runs ``job`` after ``start`` (a Barrier) and ``go`` (an Event), if given; reports its
    statuses, or the error, on ``results``."""
    outcome: list[object] = []
    client = redis.Redis(port=job.redis_port, socket_timeout=30)
    try:
        cache = RedisTokenCache(client, lock_ttl=job.lock_ttl)
        auth = FalconAuth(
            job.client_id, job.client_secret, cloud="us-1", clouds=job.clouds, cache=cache
        )
        with requests.Session() as session:
            auth.attach(session)
            if start is not None:
                start.wait(60)
            if go is not None and not go.wait(60):
                raise TimeoutError("never told to go")
            for _ in range(job.calls):
                outcome.append(session.get(job.url, timeout=60).status_code)
    except Exception as exc:
        outcome.append(f"{type(exc).__name__}: {exc}")
    finally:
        client.close()
        results.put(outcome)
