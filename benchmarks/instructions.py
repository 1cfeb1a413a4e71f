"""Instructions per call, counted by callgrind: a warm cost that shared, noisy cores cannot blur.

A warm call costs tens of microseconds more or less than its floor, and on a machine whose
other tenants come and go, the fastest of several timed rounds still moves by that much from
run to run. The number of machine instructions a call executes does not: this module runs one
call of a row (:mod:`benchmarks.rows._instructions_driver`) ``base`` and ``base + calls`` times,
each in its own interpreter under ``valgrind --tool=callgrind`` with a fixed hash seed, and
divides the difference by ``calls``, so start-up, imports and the token fetch cancel out.

Instructions are not time (a cache miss costs more than an add), but between two ways of
making the same call in the same libraries they rank the work each does.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final

__all__ = ["available", "per_call", "ratio_text"]

_ROOT: Final = Path(__file__).resolve().parent.parent
_DRIVER: Final = "benchmarks.rows._instructions_driver"
_COLLECTED: Final = re.compile(rb"Collected : (\d+)")
_BASE: Final = 50
_CALLS: Final = 200


def available() -> bool:
    """Whether valgrind is installed (``apt-get install valgrind``)."""
    return shutil.which("valgrind") is not None


def per_call(cases: list[str]) -> dict[str, float]:
    """Instructions per call of each case, the runs two at a time (this machine has 2 cores).

    Raises:
        RuntimeError: valgrind is missing, or a driver run failed (its output says why).
    """
    if not available():
        raise RuntimeError("valgrind is not installed")
    runs = [(case, n) for case in cases for n in (_BASE, _BASE + _CALLS)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        counted = dict(zip(runs, pool.map(lambda run: _collected(*run), runs)))
    return {case: (counted[case, _BASE + _CALLS] - counted[case, _BASE]) / _CALLS for case in cases}


def ratio_text(instructions: float, reference: float) -> str:
    """``0.96x instructions (978k)``: against the reference's count."""
    return f"{instructions / reference:.2f}x instructions ({instructions / 1000:,.0f}k)"


def _collected(case: str, calls: int) -> int:
    """The instructions callgrind counted for a whole driver run of ``calls`` calls."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise RuntimeError("valgrind is not installed")
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(  # noqa: S603 (valgrind on our own interpreter and driver)
        [
            valgrind,
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            "-m",
            _DRIVER,
            case,
            str(calls),
        ],
        cwd=_ROOT,
        env=env,
        capture_output=True,
        check=False,
        timeout=900,
    )
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(f"callgrind run of {case} ({calls} calls) failed: {' | '.join(tail)}")
    return int(found.group(1))
