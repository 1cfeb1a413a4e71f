"""The programs some tests run besides Python, and CrowdStrike's JavaScript SDK.

A missing program is a skip on a developer's machine and a failure in CI (``.ci/run`` installs
each from Debian when missing): redis-server for the shared token stores (and redis-cli, from
the same package, to join servers into a cluster), Node.js and npm for falconjs. ``tests/falconjs/`` pins falconjs (``package-lock.json``) beside ``drive.js``, the
scenarios ``test_falconjs.py`` runs; :func:`install_falconjs` copies them to a directory and
runs ``npm ci`` there, so nothing is ever installed into the repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from redis_launcher import INSTALL_HINT as REDIS_HINT

__all__ = ["install_falconjs", "node_tool", "redis_cli_executable", "redis_server_executable"]

NODE_HINT = "falconjs needs Node.js 18 or later and npm (Debian: apt-get install nodejs npm)"
_FALCONJS = Path(__file__).with_name("falconjs")


def _required(name: str, hint: str) -> str:
    """The path of program ``name``; a skip (a failure with CI=true) when it is missing."""
    found = shutil.which(name)
    if found is None:
        message = f"{name} is not installed: {hint}"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)
    return found


def redis_server_executable() -> str:
    return _required("redis-server", REDIS_HINT)


def redis_cli_executable() -> str:
    return _required("redis-cli", REDIS_HINT)


def node_tool(name: str) -> str:
    """``node`` or ``npm``."""
    return _required(name, NODE_HINT)


def install_falconjs(directory: Path) -> Path:
    """``directory`` with drive.js and the pinned falconjs installed (``npm ci``)."""
    version = subprocess.run(
        [node_tool("node"), "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < 18:  # fetch is global from Node 18
        pytest.fail(f"node {version}: {NODE_HINT}")
    for name in ("package.json", "package-lock.json", "drive.js"):
        shutil.copy(_FALCONJS / name, directory / name)
    npm = subprocess.run(
        [node_tool("npm"), "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=directory,
        check=False,
        timeout=600,
        capture_output=True,
        text=True,
    )
    if npm.returncode != 0:
        pytest.fail(f"npm ci could not install falconjs: {npm.stderr.strip()}")
    return directory
