"""Node.js and CrowdStrike's JavaScript SDK for the tests: a skip on a developer's machine
without Node, a failure in CI (``.ci/run`` installs Debian's nodejs and npm when missing).

``tests/falconjs/`` pins falconjs (``package-lock.json``) beside ``drive.js``, the scenarios
``test_falconjs.py`` runs; :func:`install_falconjs` copies them to a directory and runs
``npm ci`` there, so nothing is ever installed into the repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

__all__ = ["NODE_HINT", "install_falconjs", "node_tool"]

NODE_HINT = "falconjs needs Node.js 18 or later and npm (Debian: apt-get install nodejs npm)"
_SOURCES = Path(__file__).with_name("falconjs")


def node_tool(name: str) -> str:
    """The path of ``node`` or ``npm``; a skip (a failure with CI=true) when it is missing."""
    found = shutil.which(name)
    if found is None:
        message = f"{name} is not installed: {NODE_HINT}"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)
    return found


def install_falconjs(directory: Path) -> Path:
    """``directory`` with drive.js and the pinned falconjs installed (``npm ci``)."""
    version = subprocess.run(
        [node_tool("node"), "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < 18:  # fetch is global from Node 18
        pytest.fail(f"node {version}: {NODE_HINT}")
    for name in ("package.json", "package-lock.json", "drive.js"):
        shutil.copy(_SOURCES / name, directory / name)
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
