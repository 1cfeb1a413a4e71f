"""Checks that the built wheel holds what users need and nothing else.

Usage: python .ci/check_wheel.py dist/*.whl

Every file must match one of ALLOWED; every entry of REQUIRED must be there. Anything else (tests,
benchmarks, docs, the repo's redis-server launcher, stray data) fails the check, so a new
top-level file in the package is a conscious decision made here.
"""

from __future__ import annotations

import fnmatch
import re
import sys
import zipfile

PACKAGE = "requests_falcon_auth"

ALLOWED = (
    f"{PACKAGE}/*.py",
    f"{PACKAGE}/py.typed",
    f"{PACKAGE}/testing/*.py",
    f"{PACKAGE}/testing/_operations.json",
    "requests_falcon_auth-*.dist-info/METADATA",
    "requests_falcon_auth-*.dist-info/WHEEL",
    "requests_falcon_auth-*.dist-info/RECORD",
    "requests_falcon_auth-*.dist-info/entry_points.txt",
    "requests_falcon_auth-*.dist-info/top_level.txt",
    "requests_falcon_auth-*.dist-info/licenses/LICENSE",
)

REQUIRED = (
    f"{PACKAGE}/__init__.py",
    f"{PACKAGE}/py.typed",
    f"{PACKAGE}/cli.py",
    f"{PACKAGE}/testing/__init__.py",
    f"{PACKAGE}/testing/emulator.py",
    f"{PACKAGE}/testing/pytest_plugin.py",
    f"{PACKAGE}/testing/_operations.json",
    "requests_falcon_auth-*.dist-info/licenses/LICENSE",
)

# Named so that a broad pattern above can never let them in again.
FORBIDDEN = (
    f"{PACKAGE}/testing/redis_server.py",  # this repo's test helper, not for users
    "tests/*",
    "benchmarks/*",
    "docs/*",
)


def check(path: str) -> list[str]:
    with zipfile.ZipFile(path) as wheel:
        names = [n for n in wheel.namelist() if not n.endswith("/")]
        metadata = next(
            (wheel.read(n).decode() for n in names if n.endswith(".dist-info/METADATA")), ""
        )
    problems = []
    for name in names:
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in FORBIDDEN):
            problems.append(f"forbidden file in the wheel: {name}")
        elif not any(fnmatch.fnmatchcase(name, pattern) for pattern in ALLOWED):
            problems.append(f"unexpected file in the wheel: {name}")
        elif "__pycache__" in name or name.endswith((".pyc", ".pyo")):
            problems.append(f"compiled file in the wheel: {name}")
    for pattern in REQUIRED:
        if not any(fnmatch.fnmatchcase(name, pattern) for name in names):
            problems.append(f"missing from the wheel: {pattern}")
    for field in (
        r"^License-Expression: Apache-2\.0$",
        r"^License-File: LICENSE$",
        r"^Requires-Python: >=3\.9$",
        r"^Project-URL: Changelog, ",
    ):
        if not re.search(field, metadata, re.MULTILINE):
            problems.append(f"METADATA lacks {field}")
    return problems


def main(paths: list[str]) -> int:
    if len(paths) != 1:
        print(f"check_wheel: expected one wheel, got {paths}", file=sys.stderr)
        return 1
    problems = check(paths[0])
    for problem in problems:
        print(f"check_wheel: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"check_wheel: {paths[0]} holds only the package, py.typed and its metadata")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
