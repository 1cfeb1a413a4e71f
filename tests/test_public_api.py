from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import requests_falcon_auth

MODULES = [
    "requests_falcon_auth._async_tokens",
    "requests_falcon_auth.auth",
    "requests_falcon_auth.cache",
    "requests_falcon_auth.clouds",
    "requests_falcon_auth.errors",
    "requests_falcon_auth._exchange",
    "requests_falcon_auth.filecache",
    "requests_falcon_auth._flow",
    "requests_falcon_auth.httpx",
    "requests_falcon_auth.oauth2",
    "requests_falcon_auth._provider",
    "requests_falcon_auth._redaction",
    "requests_falcon_auth.redis",
    "requests_falcon_auth.retry",
    "requests_falcon_auth._scope",
    "requests_falcon_auth._sealed",
    "requests_falcon_auth.session",
    "requests_falcon_auth.testing",
    "requests_falcon_auth.testing.pytest_plugin",
    "requests_falcon_auth.token",
    "requests_falcon_auth.urllib3",
]


def test_exported_names_are_exactly_the_contract() -> None:
    assert sorted(requests_falcon_auth.__all__) == sorted(
        [
            "BAD_TOKEN_RATE_LIMIT",
            "CLOSE_REVOKE_BUDGET",
            "DEFAULT_RENEW_WINDOW",
            "DEFAULT_TIMEOUT",
            "ConfigurationError",
            "CredentialsError",
            "FalconAuth",
            "FalconAuthError",
            "FalconRetry",
            "FalconSession",
            "MemoryTokenCache",
            "OAuth2",
            "RateLimitError",
            "RegionError",
            "Token",
            "TokenCache",
            "TokenEndpointError",
            "__version__",
            "clouds",
        ]
    )
    for name in requests_falcon_auth.__all__:
        assert hasattr(requests_falcon_auth, name)


def test_the_constants_the_docs_name_have_their_documented_values() -> None:
    """README and the signatures name them; the reference shows their values."""
    from requests_falcon_auth import (
        BAD_TOKEN_RATE_LIMIT,
        CLOSE_REVOKE_BUDGET,
        DEFAULT_RENEW_WINDOW,
        DEFAULT_TIMEOUT,
        FalconAuth,
    )

    assert (BAD_TOKEN_RATE_LIMIT, CLOSE_REVOKE_BUDGET) == (15, 5.0)
    assert (DEFAULT_RENEW_WINDOW, DEFAULT_TIMEOUT) == (120.0, (10.0, 30.0))
    defaults = FalconAuth.__init__.__kwdefaults__
    assert defaults is not None
    assert (defaults["renew_window"], defaults["timeout"]) == (
        DEFAULT_RENEW_WINDOW,
        DEFAULT_TIMEOUT,
    )


# The modules a user imports (design.md) and exactly the names each offers: a name added to or
# dropped from one of these is an API change, made here on purpose. The other modules either
# carry a leading underscore (internal) or are reached through the package root.
PUBLIC = {
    "requests_falcon_auth.clouds": [
        "AUTODISCOVER",
        "AUTODISCOVERABLE",
        "CloudTable",
        "DEFAULT_CLOUDS",
        "ENTRY_REGION",
        "Origin",
        "check_base_url",
        "is_loopback_host",
        "normalize",
        "origin_of",
    ],
    "requests_falcon_auth.falconpy": ["FalconPyAuth", "FalconPyHarness"],
    "requests_falcon_auth.filecache": ["APP_NAME", "FileTokenCache"],
    "requests_falcon_auth.httpx": ["FalconHttpxAuth"],
    "requests_falcon_auth.redis": ["RedisTokenCache"],
    "requests_falcon_auth.retry": ["DEFAULT_MAX_WAIT", "FalconRetry", "parse_ratelimit_retryafter"],
    "requests_falcon_auth.testing": [
        "ApiAnswer",
        "ApiCall",
        "ApiClient",
        "Counters",
        "DEFAULT_REGIONS",
        "FalconEmulator",
        "ManualClock",
        "RateLimits",
        "RequestLogEntry",
        "TOKEN_OUTCOMES",
        "TokenGate",
    ],
    "requests_falcon_auth.testing.pytest_plugin": [
        "EmulatedFalcon",
        "falcon_auth",
        "falcon_emulator",
        "falcon_httpx_auth",
        "running_emulator",
    ],
    "requests_falcon_auth.urllib3": ["AuthorizedPoolManager"],
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_each_public_module_offers_exactly_its_names(module: str) -> None:
    assert sorted(importlib.import_module(module).__all__) == sorted(PUBLIC[module])


def test_internal_modules_carry_a_leading_underscore() -> None:
    """Every module of the package is public (pinned above), reached through the root, the
    command line, or internal by name: none becomes API at 0.1.0 by accident."""
    package = Path(requests_falcon_auth.__file__).parent
    reached = {"auth", "cache", "cli", "demo", "errors", "oauth2", "session", "token"}
    named = {
        path.stem
        for path in package.glob("*.py")
        if not path.stem.startswith("_") and path.stem not in reached
    }
    assert {f"requests_falcon_auth.{name}" for name in named} <= set(PUBLIC)


@pytest.mark.parametrize("module", MODULES)
def test_every_module_pins_its_public_names(module: str) -> None:
    imported = importlib.import_module(module)
    assert imported.__all__
    for name in imported.__all__:
        assert hasattr(imported, name), name


def test_every_error_is_a_falcon_auth_error() -> None:
    for name in requests_falcon_auth.__all__:
        obj = getattr(requests_falcon_auth, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, requests_falcon_auth.FalconAuthError)


def test_import_has_no_side_effects() -> None:
    probe = textwrap.dedent(
        """
        import logging, threading, warnings
        import cachetools, requests, urllib3  # their own import-time filters are not ours
        filters = list(warnings.filters)
        threads = threading.active_count()
        import requests_falcon_auth
        from requests_falcon_auth import _fork
        assert warnings.filters == filters, "warning filters changed"
        assert not logging.getLogger().handlers, "root handlers installed"
        assert not logging.getLogger("requests_falcon_auth").handlers, "handlers installed"
        assert threading.active_count() == threads, "threads started"
        assert not _fork._registry.installed, "fork hook installed at import"
        requests_falcon_auth.FalconAuth("id", "secret")
        assert _fork._registry.installed
        print("clean")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "clean"


def test_package_is_typed() -> None:
    from importlib.resources import files

    assert files("requests_falcon_auth").joinpath("py.typed").is_file()


def test_loading_the_pytest_plugin_imports_nothing_heavy() -> None:
    """pytest loads the plugin in every project that installs this library: it must not
    import the emulator, requests (and its adapters), urllib3 or trustme until a fixture runs."""
    script = textwrap.dedent(
        """
        import sys
        import requests_falcon_auth.testing.pytest_plugin
        heavy = ["requests", "urllib3", "trustme", "requests_falcon_auth.testing.emulator"]
        print(sorted(name for name in heavy if name in sys.modules))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
