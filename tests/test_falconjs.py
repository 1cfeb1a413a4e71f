"""CrowdStrike's JavaScript SDK (falconjs), unmodified, against the emulator.

Node runs ``tests/falconjs/drive.js``, a handful of scenarios written as a falconjs user would,
beside the pinned falconjs that the ``falconjs`` fixture installs once per run.
falconjs knows only Falcon's four public clouds, so the script's ``fetchApi`` (falconjs's
documented transport option) sends what it addresses to ``api.crowdstrike.com`` to the emulator.
The emulator keeps its defaults: the region header, sample hosts, Falcon's rate budgets.

Node and npm are required (:mod:`required_tools`).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from required_tools import node_tool

from requests_falcon_auth.testing import FalconEmulator

CLIENT_ID = "falconjs-client-61c2"
SECRET = "falconjs-secret-a94e0"
TIMEOUT = 120.0  # a safety net for a hung node process, never reached by a passing run


@pytest.fixture
def falcon() -> Iterator[FalconEmulator]:
    with FalconEmulator() as emulator:
        emulator.add_client(CLIENT_ID, SECRET)
        yield emulator


class Node:
    """Runs one scenario of drive.js against the emulator."""

    def __init__(self, falconjs: Path, falcon: FalconEmulator, scenario: str) -> None:
        config = {"base_url": falcon.base_url("us-1"), "client_id": CLIENT_ID}
        env = dict(os.environ, FALCON_EMULATOR=json.dumps({**config, "client_secret": SECRET}))
        self.process = subprocess.Popen(
            [node_tool("node"), "drive.js", scenario],
            cwd=falconjs,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._safety = threading.Timer(TIMEOUT, self.process.kill)
        self._safety.start()

    def line(self) -> dict[str, Any]:
        """The next JSON line the scenario prints."""
        assert self.process.stdout is not None
        text = self.process.stdout.readline()
        assert text, f"drive.js printed nothing more: {self.finish_with_errors()}"
        document = json.loads(text)
        assert isinstance(document, dict), document
        return document

    def tell(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def result(self) -> dict[str, Any]:
        """The scenario's result line, once the process has ended cleanly (stdin closed)."""
        rest, errors = self.process.communicate(timeout=TIMEOUT)
        self._safety.cancel()
        assert self.process.returncode == 0, errors
        lines = rest.splitlines()
        assert len(lines) == 1, rest
        document = json.loads(lines[0])
        assert isinstance(document, dict), document
        return document

    def finish_with_errors(self) -> str:
        self.process.kill()
        self._safety.cancel()
        _, errors = self.process.communicate()
        return str(errors)


def run(falconjs: Path, falcon: FalconEmulator, scenario: str) -> dict[str, Any]:
    return Node(falconjs, falcon, scenario).result()


def host_ids(falcon: FalconEmulator, **where: str) -> list[str]:
    records = falcon.records("hosts")
    return [str(r["device_id"]) for r in records if all(r.get(k) == v for k, v in where.items())]


def test_falconjs_pages_through_the_hosts_and_reads_them(
    falconjs: Path, falcon: FalconEmulator
) -> None:
    got = run(falconjs, falcon, "pages")
    assert got["ids"] == host_ids(falcon)  # 37 hosts in four pages of 10, in load order
    first_three = {str(r["device_id"]): r["hostname"] for r in falcon.records("hosts")[:3]}
    assert got["hostnames"] == list(first_three.values())
    counters = falcon.counters
    assert (counters.token_requests, counters.api_ok, counters.api_calls) == (1, 5, 5)
    api_calls = [e for e in falcon.request_log if not e.path.startswith("/oauth2/")]
    assert {(e.client_id, e.headers["Authorization"]) for e in api_calls} == {
        (CLIENT_ID, "Bearer <redacted>")
    }


def test_falconjs_sends_an_fql_filter_the_emulator_understands(
    falconjs: Path, falcon: FalconEmulator
) -> None:
    linux = host_ids(falcon, platform_name="Linux")
    assert linux  # the sample hosts include Linux ones
    assert run(falconjs, falcon, "filtered")["ids"] == linux


def test_twenty_cold_falconjs_calls_at_once_make_one_token_request(
    falconjs: Path, falcon: FalconEmulator
) -> None:
    """falconjs shares one refresh between concurrent callers (its ``activeRefresh``)."""
    assert run(falconjs, falcon, "concurrent")["statuses"] == [200] * 20
    assert falcon.counters.token_requests == 1


def test_falconjs_hands_a_401_to_its_caller_when_its_token_is_revoked(
    falconjs: Path, falcon: FalconEmulator
) -> None:
    """What the emulator shows of falconjs: it keeps a token until its expiry and does not
    renew on a 401, so a token revoked early fails every call until then."""
    node = Node(falconjs, falcon, "invalidated")
    assert node.line() == {"ready": True}  # the first call is done
    falcon.invalidate_all_tokens()
    node.tell("go")
    assert node.result() == {"first": 200, "second": 401}
    counters = falcon.counters
    assert (counters.token_requests, counters.api_ok, counters.api_401) == (1, 1, 1)


def test_falconjs_reports_a_wrong_secret_as_falcon_answers_it(
    falconjs: Path, falcon: FalconEmulator
) -> None:
    assert run(falconjs, falcon, "wrong_secret") == {"status": 403}
    counters = falcon.counters
    assert counters.token_outcomes["wrong_secret"] == 1
    assert counters.api_calls == 0
