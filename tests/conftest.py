"""Suite-wide rules.

- In CI (CI=true) a skipped test is a failure, not a pass.
- ``falconjs``: CrowdStrike's JavaScript SDK installed once per run, for the tests and the
  documentation's examples that run it under Node (see :mod:`required_tools`).
- A leak scan over the whole suite: every log record of the library and of urllib3 (at DEBUG)
  and every FalconAuthError message raised anywhere in the run are searched, at the end, for
  every client secret the emulators were given, every token they issued and every test
  module's ``SECRET`` (with its ``CLIENT_ID``) and ``TOKEN``, in every form the library puts them on the wire: raw, URL-encoded
  (``quote_plus``, ``quote``) and, for secrets, inside the revoke call's Basic credential.
  One hit fails the run.
"""

from __future__ import annotations

import base64
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis_launcher import RedisServer, ThreeNodeCluster
from required_tools import install_falconjs, redis_cli_executable, redis_server_executable

from requests_falcon_auth._ratelimit import forget_token_budgets
from requests_falcon_auth._redaction import wire_forms
from requests_falcon_auth.errors import FalconAuthError
from requests_falcon_auth.testing import FalconEmulator

_SCANNED_LOGGERS = ("requests_falcon_auth", "urllib3")

# caracara needs Python 3.11 or later, so the test extra installs it only there; below that its
# scenarios are not collected at all (a skip would fail CI, and no such run could pass them).
collect_ignore = (
    [] if sys.version_info >= (3, 11) else ["test_caracara.py", "test_caracara_operations.py"]
)


class _Evidence(logging.Handler):
    """Everything the suite logged or raised, and every secret it must not contain."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []
        self.records = 0
        self.errors = 0
        self.secrets: set[str] = set()
        self.credentials: set[tuple[str, str]] = set()
        self.tokens: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        self.records += 1
        self.texts.append(record.getMessage())
        if record.exc_info and record.exc_info[1] is not None:
            self.texts.append(str(record.exc_info[1]))

    def hits(self) -> tuple[int, int]:
        """How many secrets and how many tokens appear, in any wire form, in what was recorded."""
        haystack = "\n".join(self.texts)
        basics = {
            base64.b64encode(f"{client_id}:{secret}".encode()).decode("ascii")
            for client_id, secret in self.credentials
        }
        secrets = sum(
            1
            for s in self.secrets
            if len(s) >= 8 and any(form in haystack for form in wire_forms(s))
        ) + sum(1 for basic in basics if basic in haystack)
        tokens = sum(1 for t in self.tokens if any(form in haystack for form in wire_forms(t)))
        return secrets, tokens


_evidence = _Evidence()


def _record_error_messages() -> None:
    original = FalconAuthError.__init__

    def recording_init(self: FalconAuthError, message: str, **context: Any) -> None:
        original(self, message, **context)
        _evidence.errors += 1
        _evidence.texts.append(str(self))

    FalconAuthError.__init__ = recording_init  # type: ignore[method-assign]


def _record_emulator_secrets() -> None:
    add_client, stop = FalconEmulator.add_client, FalconEmulator.stop

    def recording_add_client(
        self: FalconEmulator, client_id: str, client_secret: str, **kw: Any
    ) -> Any:
        _evidence.secrets.add(client_secret)
        _evidence.credentials.add((client_id, client_secret))
        return add_client(self, client_id, client_secret, **kw)

    def recording_stop(self: FalconEmulator) -> None:
        _evidence.tokens.update(self.issued_tokens())
        stop(self)

    FalconEmulator.add_client = recording_add_client  # type: ignore[method-assign]
    FalconEmulator.stop = recording_stop  # type: ignore[method-assign]


def pytest_configure(config: pytest.Config) -> None:
    for name in _SCANNED_LOGGERS:
        logger = logging.getLogger(name)
        logger.addHandler(_evidence)
        logger.setLevel(logging.DEBUG)
    _record_error_messages()
    _record_emulator_secrets()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = getattr(item, "module", None)
        secret, client_id = getattr(module, "SECRET", None), getattr(module, "CLIENT_ID", None)
        if isinstance(secret, str):
            _evidence.secrets.add(secret)
            if isinstance(client_id, str):
                _evidence.credentials.add((client_id, secret))
        token = getattr(module, "TOKEN", None)
        if isinstance(token, str):
            _evidence.tokens.add(token)


@pytest.fixture(scope="session")
def falconjs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory where falconjs is installed, with tests/falconjs/drive.js beside it."""
    return install_falconjs(tmp_path_factory.mktemp("falconjs"))


@pytest.fixture(autouse=True)
def _fresh_token_budgets() -> Iterator[None]:
    """The token endpoint's budget is the process's: one test's 429 must not pace the next."""
    yield
    forget_token_budgets()


@pytest.fixture(autouse=True)
def _keep_scanning() -> Iterator[None]:
    """caplog.at_level() may lower a logger's level for a test; the scan needs DEBUG after it."""
    yield
    for name in _SCANNED_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    leaked_secrets, leaked_tokens = _evidence.hits()
    summary = (
        f"leak scan: {_evidence.records} log records and {_evidence.errors} FalconAuthError "
        f"messages searched for {len(_evidence.secrets)} secrets, "
        f"{len(_evidence.credentials)} Basic credentials and {len(_evidence.tokens)} issued "
        f"tokens, each in every wire form: {leaked_secrets + leaked_tokens} hits"
    )
    if reporter is not None:
        reporter.write_line(summary)
    if leaked_secrets or leaked_tokens:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if reporter is not None:
            reporter.write_line(
                f"leak scan: {leaked_secrets} secrets and {leaked_tokens} tokens found in logs "
                "or exception messages"
            )
    if os.environ.get("CI", "").lower() not in {"1", "true", "yes"}:
        return
    skipped = len(reporter.stats.get("skipped", [])) if reporter is not None else 0
    if skipped:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if reporter is not None:
            reporter.write_line(f"CI: {skipped} test(s) skipped; every test must run in CI.")


# One throwaway redis-server, and one 3-node Redis Cluster, per test module that asks.
@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer(redis_server_executable()) as server:
        yield server


@pytest.fixture(scope="module")
def redis_cluster() -> Iterator[ThreeNodeCluster]:
    with ThreeNodeCluster(redis_server_executable(), redis_cli_executable()) as cluster:
        yield cluster
