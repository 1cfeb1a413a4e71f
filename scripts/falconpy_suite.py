"""Run CrowdStrike's own falconpy test files, unmodified, against the emulator.

falconpy's source distribution ships the tests CrowdStrike runs against the real Falcon with
real credentials (``DEBUG_API_ID``, ``DEBUG_API_SECRET``, ``DEBUG_API_BASE_URL``). This script
downloads that sdist (``pip download``), unpacks its ``tests/`` into a temporary directory,
starts a :class:`~requests_falcon_auth.testing.FalconEmulator` (its sample tenant loaded, as a
real tenant holds data; Falcon's rate budgets on; real sockets), points the variables at it
and runs pytest on each chosen file in a subprocess of its own, then prints
passed/failed/skipped per file and one line per failure or skip. Which of those are the
emulator's fault is a judgement this script leaves to its reader, with one piece of evidence:
each line names the hosts other than loopback that the test looked up (a test that calls
``base_url="us1"`` needs the public cloud, whatever answers here). A ``conftest.py`` beside
``tests/`` records them; falconpy's own files are untouched.

The emulator leaves ``X-Cs-Region`` out of token answers (``region_header=False``): falconpy
moves a custom base URL to the public cloud that header names.

``--bridge`` runs the same files with falconpy on this library's engine: the ``conftest.py``
replaces falconpy's authentication fixture, ``TestAuthorization.getConfigObject`` (the one
that hands service classes their ``auth_object``), with one that returns
``FalconPyAuth(FalconAuth(id, secret, base_url=...))``; the test files are untouched. The
emulator then sends ``X-Cs-Region`` as Falcon does, which the bridge never lets move its URL.

Usage::

    python scripts/falconpy_suite.py                     # the 13 files of issue 21
    python scripts/falconpy_suite.py --all               # every tests/test_*.py of the sdist
    python scripts/falconpy_suite.py test_hosts.py --sdist crowdstrike_falconpy-1.6.6.tar.gz
    python scripts/falconpy_suite.py test_hosts.py --bridge   # on FalconPyAuth

Needs falconpy and pytest installed in the interpreter that runs it (``pip install -e
'.[test]'``); the tests import the installed falconpy, not the sdist's copy.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from requests_falcon_auth.testing import FalconEmulator

FALCONPY = "crowdstrike-falconpy==1.6.6"
REGION = "us-1"

# The files issue 21 measures: those that test data, or the SDK itself, rather than one API.
ISSUE_FILES = (
    "test_authorization.py",
    "test_hosts.py",
    "test_uber.py",
    "test_uber_api_complete.py",
    "test_service_class.py",
    "test_result_object.py",
    "test_authentications.py",
    "test_timeout.py",
    "test_sensor_download.py",
    "test_api_request.py",
    "test_host_group.py",
    "test_helper.py",
    "test_event_streams.py",
)


# Written beside tests/ (so theirs stays untouched): records, per test, every host name other
# than loopback it looked up, into the JSON file named by HOSTS_FILE.
HOSTS_CONFTEST = """
import json, os, socket
import pytest

_resolve = socket.getaddrinfo
_current = ["(collection)"]
_looked_up = {}


def _recording(host, *args, **kwargs):
    name = host.decode() if isinstance(host, bytes) else host
    if name not in (None, "127.0.0.1", "localhost", "::1"):
        _looked_up.setdefault(_current[0], set()).add(name)
    return _resolve(host, *args, **kwargs)


socket.getaddrinfo = _recording


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _current[0] = "::".join(item.nodeid.split("::")[1:])
    yield
    _current[0] = "(teardown)"


if os.environ.get("FALCONPY_BRIDGE"):
    from requests_falcon_auth import FalconAuth
    from requests_falcon_auth.falconpy import FalconPyAuth
    from tests import test_authorization

    def _bridged_config_object(self):
        # falconpy's fixture, handing out a FalconPyAuth instead of an OAuth2.
        if self.getConfig():
            self.authorization = FalconPyAuth(
                FalconAuth(
                    self.config["falcon_client_id"],
                    self.config["falcon_client_secret"],
                    base_url=self.config["falcon_base_url"],
                )
            )
            if not test_authorization.shared_token:
                token = self.authorization.token()["body"]["access_token"]
                test_authorization.shared_token = token
        return self.authorization

    test_authorization.TestAuthorization.getConfigObject = _bridged_config_object


def pytest_sessionfinish(session):
    with open(os.environ["HOSTS_FILE"], "w") as out:
        json.dump({test: sorted(hosts) for test, hosts in _looked_up.items()}, out)
"""


@dataclass
class Outcome:
    """One test's result: ``passed``, ``failed``, ``error`` or ``skipped``, and why."""

    name: str
    status: str
    reason: str = ""
    hosts: list[str] = field(default_factory=list)


@dataclass
class FileResult:
    """The outcomes of one test file, or the reason it produced none."""

    name: str
    outcomes: list[Outcome] = field(default_factory=list)
    crashed: str = ""
    collection_hosts: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status == status)


def fetch_sdist(requirement: str, into: Path) -> Path:
    """Downloads falconpy's source distribution (the wheel has no tests) into ``into``."""
    subprocess.run(  # noqa: S603 (our own interpreter, fixed arguments)
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--dest",
            str(into),
            requirement,
        ],
        check=True,
    )
    (sdist,) = into.glob("*.tar.gz")
    return sdist


def unpack_tests(sdist: Path, into: Path) -> Path:
    """Extracts the sdist's ``tests/`` package and returns the directory holding it.

    The tests import each other as ``tests.test_authorization``, so they run from that
    directory.
    """
    with tarfile.open(sdist) as archive:
        members = [
            member
            for member in archive.getmembers()
            if member.name.split("/")[1:2] == ["tests"] and (member.isfile() or member.isdir())
        ]
        if not members:
            raise SystemExit(f"{sdist} holds no tests/ directory")
        if hasattr(tarfile, "data_filter"):  # PEP 706 (3.12, and backported to 3.9.17+)
            archive.extractall(into, members=members, filter="data")
        else:
            archive.extractall(into, members=members)  # noqa: S202 (regular files only)
    root = into / members[0].name.split("/")[0]
    (root / "conftest.py").write_text(HOSTS_CONFTEST, encoding="utf-8")
    return root


def suite_environment(falcon: FalconEmulator, client_id: str, secret: str) -> dict[str, str]:
    """The variables falconpy's tests read, naming the emulator and its one client."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("FALCON_", "FALCONPY_", "DEBUG_", "CROSS_DEBUG_"))
    }
    env.update(
        DEBUG_API_ID=client_id,
        DEBUG_API_SECRET=secret,
        DEBUG_API_BASE_URL=falcon.base_url(REGION),
        # A second cloud's credentials in CrowdStrike's own runs; they are only ever sent to
        # the public cloud, by name, so any value will do.
        CROSS_DEBUG_KEY=client_id,
        CROSS_DEBUG_SECRET=secret,
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def first_line(text: str | None) -> str:
    """The first non-empty line of a failure message, shortened for one line of output."""
    lines = (line.strip() for line in (text or "").splitlines())
    return next((line[:200] for line in lines if line), "")


def read_report(report: Path) -> Iterator[Outcome]:
    """The outcomes in a pytest JUnit XML report."""
    root = ET.parse(report).getroot()  # noqa: S314 (written by the pytest we just ran)
    for case in root.iter("testcase"):
        classes = case.get("classname", "").split(".")[2:]  # after "tests.test_x"
        name = "::".join([*classes, case.get("name", "")])
        status, reason = "passed", ""
        for child in case:
            if child.tag in {"failure", "error", "skipped"}:
                status = {"failure": "failed"}.get(child.tag, child.tag)
                reason = first_line(child.get("message")) or first_line(child.text)
                break
        yield Outcome(name, status, reason)


def run_file(root: Path, name: str, env: dict[str, str], timeout: float) -> FileResult:
    """Runs one test file in a pytest subprocess, from the directory holding ``tests/``."""
    report = root / f"report-{name}.xml"
    hosts_file = root / f"hosts-{name}.json"
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-o",
        "junit_logging=no",
        f"--junitxml={report}",
        f"tests/{name}",
    ]
    result = FileResult(name)
    try:
        finished = subprocess.run(  # noqa: S603 (our own interpreter, fixed arguments)
            command,
            check=False,
            cwd=root,
            env={**env, "HOSTS_FILE": str(hosts_file)},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        result.crashed = f"no result within {timeout:g} s"
        return result
    if report.exists():
        result.outcomes = list(read_report(report))
    if hosts_file.exists():
        looked_up: dict[str, list[str]] = json.loads(hosts_file.read_text(encoding="utf-8"))
        result.collection_hosts = looked_up.get("(collection)", [])
        for outcome in result.outcomes:
            outcome.hosts = looked_up.get(outcome.name, [])
    if not result.outcomes:
        tail = (finished.stdout + finished.stderr).strip().splitlines()[-1:] or ["no output"]
        result.crashed = f"pytest exited {finished.returncode}: {tail[0][:200]}"
    return result


def print_results(results: Sequence[FileResult]) -> None:
    """A table of counts per file, then one line per test that did not pass."""
    width = max(len(result.name) for result in results)
    print(f"{'file':<{width}}  passed  failed  skipped")
    totals = [0, 0, 0]
    for result in results:
        counts = [
            result.count("passed"),
            result.count("failed") + result.count("error"),
            result.count("skipped"),
        ]
        totals = [a + b for a, b in zip(totals, counts)]
        note = f"  ({result.crashed})" if result.crashed else ""
        if result.collection_hosts:
            note += f"  [imported with: {', '.join(result.collection_hosts)}]"
        print(f"{result.name:<{width}}  {counts[0]:6}  {counts[1]:6}  {counts[2]:7}{note}")
    print(f"{'total':<{width}}  {totals[0]:6}  {totals[1]:6}  {totals[2]:7}")
    for result in results:
        for outcome in result.outcomes:
            if outcome.status != "passed":
                hosts = f" [looked up: {', '.join(outcome.hosts)}]" if outcome.hosts else ""
                line = f"{result.name}::{outcome.name}: {outcome.reason}{hosts}"
                print(f"{outcome.status.upper():7} {line}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", help="test files to run (default: issue 21's 13)")
    parser.add_argument("--all", action="store_true", help="run every tests/test_*.py")
    parser.add_argument("--sdist", type=Path, help="a downloaded sdist (default: pip download)")
    parser.add_argument("--requirement", default=FALCONPY, help=f"default: {FALCONPY}")
    parser.add_argument(
        "--bridge",
        action="store_true",
        help="hand the service classes a FalconPyAuth (X-Cs-Region sent, as Falcon does)",
    )
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="seconds allowed per file (default 600)"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="falconpy-suite-") as temp:
        sdist = args.sdist or fetch_sdist(args.requirement, Path(temp))
        root = unpack_tests(sdist, Path(temp))
        if args.all:
            files = sorted(path.name for path in (root / "tests").glob("test_*.py"))
        else:
            files = args.files or list(ISSUE_FILES)
        missing = [name for name in files if not (root / "tests" / name).is_file()]
        if missing:
            parser.error(f"not in the sdist's tests/: {', '.join(missing)}")
        client_id, secret = f"falconpy-suite-{secrets.token_hex(4)}", secrets.token_hex(20)
        with FalconEmulator(regions=(REGION,), region_header=args.bridge) as falcon:
            falcon.add_client(client_id, secret, region=REGION)
            falcon.load_samples()
            env = suite_environment(falcon, client_id, secret)
            if args.bridge:
                env["FALCONPY_BRIDGE"] = "1"
            results = []
            for name in files:
                print(f"running {name}", file=sys.stderr, flush=True)
                results.append(run_file(root, name, env, args.timeout))
    print_results(results)
    failed = any(r.crashed or r.count("failed") or r.count("error") for r in results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
