"""Finding redis-server for the tests: a skip on a developer's machine, a failure in CI.

Kept apart from :mod:`redis_launcher`, which starts the server, because the benchmarks use the
launcher and must not need pytest.
"""

from __future__ import annotations

import os
import shutil

import pytest
from redis_launcher import INSTALL_HINT

__all__ = ["redis_server_executable"]


def redis_server_executable() -> str:
    """The redis-server path; a skip (a failure with CI=true) when it is not installed."""
    executable = shutil.which("redis-server")
    if executable is None:
        message = f"redis-server is not installed: {INSTALL_HINT}"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)
    return executable
