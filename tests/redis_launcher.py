"""A throwaway ``redis-server`` on a free loopback port, for tests and benchmarks of fleets,
and a throwaway Redis Cluster of three such servers.

Started with persistence off; ready when the server logs that it accepts connections (read from
its output, not polled for); stopped (terminated, then killed if need be) when the block ends.
``stop()`` then ``start()`` again keeps the port, to take Redis away and bring it back. The
cluster is ready when every node reports ``cluster_state:ok`` (polled: no node says when).

Test infrastructure, not part of the package: the tests import it as ``redis_launcher`` (pytest
puts ``tests/`` on the path), the benchmarks as ``tests.redis_launcher`` (``python -m
benchmarks`` runs from the repository root).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Final

__all__ = ["INSTALL_HINT", "RedisServer", "RedisUnavailable", "ThreeNodeCluster"]

_READY: Final = b"Ready to accept connections"
_STOP_TIMEOUT: Final = 10.0
# A cluster node also listens on its port + 10000 for the other nodes (the cluster bus).
_BUS_OFFSET: Final = 10_000
_CLUSTER_READY_TIMEOUT: Final = 60.0
_CLUSTER_POLL: Final = 0.05
INSTALL_HINT: Final = "apt-get install -y redis-server (or brew install redis)"


class RedisUnavailable(RuntimeError):
    """redis-server is not installed or did not start."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _free_cluster_port() -> int:
    """A free port whose cluster bus port is free too (Redis before 7 cannot be given one)."""
    while True:
        with (
            socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock,
            socket.socket(socket.AF_INET, socket.SOCK_STREAM) as bus,
        ):
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
            if port + _BUS_OFFSET > 65535:
                continue
            try:
                bus.bind(("127.0.0.1", port + _BUS_OFFSET))
            except OSError:
                continue
            return port


class RedisServer:
    """``with RedisServer() as server:`` serves on ``127.0.0.1:server.port``.

    Args:
        executable: the redis-server to run (default: the one on PATH).
        port: the port to listen on (default: a free one).
        options: more command-line options for the server.

    Raises:
        RedisUnavailable: redis-server is not installed, or exited before it was ready.
    """

    def __init__(
        self, executable: str | None = None, *, port: int | None = None, options: Sequence[str] = ()
    ) -> None:
        found = executable or shutil.which("redis-server")
        if found is None:
            raise RedisUnavailable(f"redis-server is not installed: {INSTALL_HINT}")
        self.executable = found
        self.port = _free_port() if port is None else port
        self.options = list(options)
        self._process: subprocess.Popen[bytes] | None = None
        self._drain: threading.Thread | None = None

    def start(self) -> None:
        """Starts the server and returns once it accepts connections."""
        command = [
            self.executable,
            *("--port", str(self.port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no", "--logfile", ""),
            *self.options,
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


class ThreeNodeCluster:
    """``with ThreeNodeCluster() as cluster:`` a Redis Cluster of three masters (no replicas) on
    ``127.0.0.1:cluster.ports``, each serving a third of the hash slots.

    Args:
        executable: the redis-server to run (default: the one on PATH).
        cli: the redis-cli that joins the nodes (default: the one on PATH).

    Raises:
        RedisUnavailable: redis-server or redis-cli is not installed, a node did not start, or
            the cluster did not form.
    """

    def __init__(self, executable: str | None = None, cli: str | None = None) -> None:
        found = cli or shutil.which("redis-cli")
        if found is None:
            raise RedisUnavailable(f"redis-cli is not installed: {INSTALL_HINT}")
        self.cli = found
        self._directory = tempfile.TemporaryDirectory(prefix="redis-cluster-")
        directory = Path(self._directory.name)
        self.nodes = []
        for _ in range(3):
            port = _free_cluster_port()
            options = ["--cluster-enabled", "yes", "--dir", str(directory)]
            options += ["--cluster-config-file", f"nodes-{port}.conf"]
            self.nodes.append(RedisServer(executable, port=port, options=options))

    @property
    def ports(self) -> list[int]:
        return [node.port for node in self.nodes]

    def start(self) -> None:
        """Starts the nodes, joins them, and returns once every node serves its slots."""
        try:
            for node in self.nodes:
                node.start()
            created = subprocess.run(
                [
                    self.cli,
                    *("--cluster", "create", *(f"127.0.0.1:{port}" for port in self.ports)),
                    *("--cluster-replicas", "0", "--cluster-yes"),
                ],
                capture_output=True,
                text=True,
                timeout=_CLUSTER_READY_TIMEOUT,
                check=False,
            )
            if created.returncode != 0:
                raise RedisUnavailable(f"redis-cli --cluster create failed:\n{created.stdout}")
            self._wait_for_slots()
        except BaseException:
            self.stop()
            raise

    def _wait_for_slots(self) -> None:
        deadline = time.monotonic() + _CLUSTER_READY_TIMEOUT
        waiting = list(self.ports)
        while waiting:
            info = subprocess.run(
                [self.cli, "-p", str(waiting[0]), "cluster", "info"],
                capture_output=True,
                text=True,
                timeout=_CLUSTER_READY_TIMEOUT,
                check=False,
            )
            if "cluster_state:ok" in info.stdout:
                waiting.pop(0)
            elif time.monotonic() > deadline:
                raise RedisUnavailable(f"the cluster did not form:\n{info.stdout}")
            else:
                threading.Event().wait(_CLUSTER_POLL)  # the state is polled: nothing announces it

    def stop(self) -> None:
        """Stops every node and removes their files (idempotent)."""
        for node in self.nodes:
            node.stop()
        self._directory.cleanup()

    def __enter__(self) -> ThreeNodeCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
