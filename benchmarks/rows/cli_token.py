"""Row 17: what ``falcon-auth token`` costs a shell script, next to starting Python at all.

``curl -H "Authorization: Bearer $(falcon-auth token)"`` in a loop starts the command on every
call. With a fresh token in the host's token cache it makes no token request and imports no
HTTP stack (:mod:`requests_falcon_auth._cached_token`), so what is left is starting Python,
reading the cache file and decrypting it. Each command is a new process, timed in the same
interleaved rounds on the same interpreter: ``python -c pass`` (the floor), the cached
``falcon-auth token``, and a first call on an empty cache directory (a token request to the
emulator). Twice: in this interpreter's environment, where the benchmark's editable install
(``pip install -e``) puts an import finder in every start, the floor included; and in a fresh
environment with the package installed from a wheel built from this checkout, as a user's
``pip install`` leaves it. The fastest round of each counts: on shared cores noise only ever
adds time. The processes run without ``PYTHONDONTWRITEBYTECODE``, as a user's do.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final, NamedTuple

from ..budget import Budget
from ..peers import OURS
from ..remote import Lab
from ..report import NOT_APPLICABLE, Cell, Row, Section, ratio
from ._notes import STATIC

__all__ = ["NUMBER", "TITLE", "run"]

NUMBER: Final = "17"
TITLE: Final = "a cached token from the command line"

# The target the issue set: a cached token within three times the cost of starting Python.
GOAL: Final = 3.0
_WAIT: Final = 60.0
_BUILD_WAIT: Final = 600.0
_FLOOR: Final = "python -c pass"
_CACHED: Final = "cached"
_UNCACHED: Final = "uncached"
_REPO: Final = Path(__file__).resolve().parents[2]
# What building the wheel reads from the checkout.
_SOURCES: Final = ("requests_falcon_auth", "pyproject.toml", "README.rst", "LICENSE", "MANIFEST.in")


class Install(NamedTuple):
    """An environment the commands run in: its interpreter and its ``falcon-auth``."""

    python: str
    falcon_auth: list[str]


def _this_install() -> Install:
    """This interpreter and the console script beside it (``-m`` without one)."""
    script = shutil.which("falcon-auth", path=os.path.dirname(sys.executable))
    command = [script] if script else [sys.executable, "-m", "requests_falcon_auth"]
    return Install(sys.executable, command)


def _wheel_install(where: Path) -> Install:
    """A new virtual environment with the package installed from a wheel of this checkout, as
    ``pip install`` leaves it (no import finder, the console script pip writes, bytecode).

    The wheel is built by pip in an isolated build environment (setuptools from PyPI, as
    pyproject.toml asks); the dependencies are this interpreter's, reached through a ``.pth``
    line (the ``.pth`` files of a directory added so are not run: the editable finder is not).
    """
    source, dist, venv = where / "source", where / "dist", where / "venv"
    source.mkdir()
    for name in _SOURCES:
        origin = _REPO / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(origin, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    _check([*pip, "wheel", "--no-deps", "-w", str(dist), str(source)])
    _check([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = str(venv / "bin" / "python")
    wheel = next(dist.glob("*.whl"))
    _check([*pip, "--python", python, "install", "--no-deps", "--no-index", str(wheel)])
    target = sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)})
    dependencies = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(target, "benchmark-dependencies.pth").write_text("\n".join(sorted(dependencies)) + "\n")
    return Install(python, [str(venv / "bin" / "falcon-auth")])


def _check(argv: Sequence[str]) -> None:
    """Runs a step of building the wheel environment; its output says why it failed."""
    # This interpreter, pip and paths made here: nothing from outside the run.
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=_BUILD_WAIT)  # noqa: S603
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])}... failed:\n{done.stdout}{done.stderr}")


def _seconds(argv: Sequence[str], env: dict[str, str]) -> float:
    """Wall-clock seconds of one process, start to exit; it must succeed."""
    start = time.perf_counter()
    # This interpreter, its console script and fixed arguments: nothing from outside the run.
    subprocess.run(argv, env=env, capture_output=True, check=True, timeout=_WAIT)  # noqa: S603
    return time.perf_counter() - start


def _best(
    installs: dict[str, Install],
    token_argv: list[str],
    user: Callable[[str], dict[str, str]],
    rounds: int,
) -> dict[tuple[str, str], float]:
    """The fastest of ``rounds`` interleaved rounds of each install's three commands."""
    commands: dict[tuple[str, str], tuple[list[str], str]] = {}
    for name, install in installs.items():
        token = [*install.falcon_auth, *token_argv]
        user_cache = f"cached-{name}"
        _seconds(token, user(user_cache))  # fills the cache the cached calls read
        _seconds(token, user(user_cache))  # and one cached call, which writes any bytecode
        commands[name, _FLOOR] = ([install.python, "-c", "pass"], user_cache)
        commands[name, _CACHED] = (token, user_cache)
        commands[name, _UNCACHED] = (token, "")
    best = dict.fromkeys(commands, math.inf)
    order = list(commands)
    for index in range(rounds):
        for which in order[index % len(order) :] + order[: index % len(order)]:
            argv, user_cache = commands[which]
            env = user(user_cache or f"empty-{which[0]}-{index}")
            best[which] = min(best[which], _seconds(argv, env))
    return best


def _cell_text(best: dict[tuple[str, str], float], name: str) -> str:
    floor, cached = best[name, _FLOOR], best[name, _CACHED]
    verdict = "within" if cached / floor <= GOAL else "over"
    return (
        f"{ratio(cached, floor)} `python -c pass` ({cached * 1e3:.0f} ms vs "
        f"{floor * 1e3:.0f} ms; {verdict} the {GOAL:g}x goal), first call "
        f"{ratio(best[name, _UNCACHED], floor)} ({best[name, _UNCACHED] * 1e3:.0f} ms)"
    )


def run(lab: Lab, budget: Budget) -> Section:
    """``budget.host_runs`` interleaved rounds of the floor, the cached and the uncached call,
    in this environment and in one installed from a wheel."""
    rounds = budget.host_runs
    with lab.emulator() as emulator, tempfile.TemporaryDirectory(prefix="falcon-bench-") as home:
        target = emulator.new_target()
        installs = {"editable": _this_install(), "wheel": _wheel_install(Path(home))}

        def user(cache_home: str) -> dict[str, str]:
            """A user's environment whose cache directory (XDG_CACHE_HOME) is ``cache_home``:
            the CLI finds it as it does by default, with no flag."""
            env = {
                **os.environ,
                "FALCON_CLIENT_ID": target.client_id,
                "FALCON_CLIENT_SECRET": target.client_secret,
                "XDG_CACHE_HOME": os.path.join(home, "users", cache_home),
            }
            # A user's Python keeps the package's bytecode: with this set (some shells and CI
            # images set it), every run would compile each module changed since the last
            # cache was written, and the row would time the compiler.
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            return env

        before = emulator.tally().token_requests
        best = _best(installs, ["token", "--base-url", target.base_url], user, rounds)
        requests = emulator.tally().token_requests - before
    expected = len(installs) * (rounds + 1)  # each uncached run, and each install's first
    if requests != expected:  # the cached runs made none
        raise RuntimeError(f"{requests} token requests, expected {expected}")
    ours = Cell(
        f"installed from a wheel: {_cell_text(best, 'wheel')} · editable install, as this "
        f"benchmark runs: {_cell_text(best, 'editable')}"
    )
    no_cli = Cell(NOT_APPLICABLE, ("cli-token-none",))
    return Section(
        rows=[
            Row(
                NUMBER,
                Cell("`falcon-auth token` with a cached token, per run", ("cli-token-method",)),
                {
                    OURS: ours,
                    "falconpy": no_cli,
                    "requests-auth": no_cli,
                    "authlib": no_cli,
                    STATIC: no_cli,
                },
            )
        ],
        notes={
            "cli-token-method": (
                "Wall-clock time of a whole process, start to exit, as `$(falcon-auth token)` "
                "in a shell loop pays it: the console script with a fresh token in its "
                "FileTokenCache (no token request; neither requests, urllib3, argparse, "
                "logging nor platformdirs imported), beside `python -c pass` on the same "
                "interpreter, and a first call on an empty cache directory, which asks the "
                f"emulator for a token. Fastest of {rounds} interleaved rounds, in two "
                "environments: a fresh virtual environment with the package installed from "
                "a wheel built from this checkout (a user's `pip install`), and the "
                "benchmark's own editable install (`pip install -e`), whose import finder "
                "every start loads, `python -c pass` included (about 20 ms here, pathlib "
                "among it): the same run costs the same in both, over a higher floor in the "
                "editable one. What a cached run cannot avoid is most of its cost: the "
                "console script pip writes imports `re`, and opening the sealed token imports "
                "json, hashlib and cryptography's AES-GCM (its Rust bindings)."
            ),
            "cli-token-none": "No command line that prints a token.",
        },
    )
