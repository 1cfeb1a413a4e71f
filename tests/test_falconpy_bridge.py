"""FalconPyAuth: falconpy's service classes and Uber class on this library's token engine.

falconpy runs unmodified, against the emulator with Falcon's rate budgets on and its
``X-Cs-Region`` header sent (which falconpy's own login would follow to the public cloud), over
real sockets, from real threads. What each test shows of falconpy alone is in benchmarks/
(row 16): 64 cold threads make 64 token requests there, 1 here.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from falconpy import Hosts, OAuth2

from requests_falcon_auth import ConfigurationError, CredentialsError, FalconAuth
from requests_falcon_auth.falconpy import FalconPyAuth, FalconPyHarness
from requests_falcon_auth.filecache import FileTokenCache
from requests_falcon_auth.testing import FalconEmulator

CLIENT_ID = "bridge-client-5c1e"
CLIENT_SECRET = "bridge-secret-a93f07"
REGION = "us-2"


@pytest.fixture
def falcon() -> Iterator[FalconEmulator]:
    with FalconEmulator(regions=("us-1", REGION)) as emulator:
        emulator.add_client(CLIENT_ID, CLIENT_SECRET, region=REGION)
        yield emulator


def engine(falcon: FalconEmulator, **kwargs: Any) -> FalconAuth:
    """A FalconAuth finding the client's home region as on Falcon: autodiscovery."""
    kwargs.setdefault("client_secret", CLIENT_SECRET)
    return FalconAuth(CLIENT_ID, cloud="auto", clouds=falcon.clouds, **kwargs)


@pytest.fixture
def bridge(falcon: FalconEmulator) -> Iterator[FalconPyAuth]:
    auth = FalconPyAuth(engine(falcon))
    yield auth
    auth.close()


def status(result: object) -> int:
    assert isinstance(result, dict), result
    return int(result["status_code"])


def authorized(entry: Any) -> bool:
    return any(name.lower() == "authorization" for name in entry.headers)


def run_threads(count: int, work: Any) -> None:
    """``count`` threads run ``work(start)`` (``start``: a barrier they pass together)."""
    start = threading.Barrier(count)
    errors: list[BaseException] = []

    def guarded() -> None:
        try:
            work(start)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guarded) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors


def test_sixty_four_cold_threads_make_one_token_request(
    falcon: FalconEmulator, bridge: FalconPyAuth
) -> None:
    statuses: list[int] = []

    def work(start: threading.Barrier) -> None:
        start.wait()
        hosts = Hosts(auth_object=bridge)  # falconpy logs in here when it sees no token
        statuses.append(status(hosts.query_devices_by_filter(limit=1)))

    run_threads(64, work)
    assert statuses == [200] * 64
    assert falcon.counters.tokens_issued == 1


def test_every_token_invalidated_twice_under_load_fails_no_call(
    falcon: FalconEmulator, bridge: FalconPyAuth
) -> None:
    """32 threads call while every token is revoked twice; past 15 bad-token calls a minute
    Falcon answers 429 instead of 401, and both are healed with one fresh token."""
    threads, calls = 32, 12
    done = itertools.count(1)
    triggers = {threads * calls // 3, 2 * threads * calls // 3}
    statuses: list[int] = []

    def work(start: threading.Barrier) -> None:
        hosts = Hosts(auth_object=bridge)
        start.wait()
        for _ in range(calls):
            statuses.append(status(hosts.query_devices_by_filter(limit=1)))
            if next(done) in triggers:
                falcon.invalidate_all_tokens()

    run_threads(threads, work)
    counters = falcon.counters
    assert statuses == [200] * threads * calls
    assert counters.api_401 + counters.api_429 > 0  # the invalidations did reject calls
    assert counters.tokens_issued == 3


def test_a_rejected_token_is_replaced_and_the_call_resent(
    falcon: FalconEmulator, bridge: FalconPyAuth
) -> None:
    hosts = Hosts(auth_object=bridge)
    first = bridge.token_value
    falcon.reject_api_calls(1)
    assert status(hosts.query_devices_by_filter(limit=1)) == 200
    assert falcon.counters.tokens_issued == 2
    assert bridge.token_value not in (None, first)


def test_x_cs_region_never_moves_the_base_url(falcon: FalconEmulator, bridge: FalconPyAuth) -> None:
    hosts = Hosts(auth_object=bridge)
    assert status(hosts.query_devices_by_filter(limit=1)) == 200
    assert hosts.base_url == bridge.falcon.base_url == falcon.base_url(REGION)
    api_calls = [e for e in falcon.request_log if e.path.startswith("/devices/")]
    assert [e.region for e in api_calls] == [REGION]


def test_the_token_never_goes_to_a_url_outside_the_api(
    falcon: FalconEmulator, bridge: FalconPyAuth
) -> None:
    with FalconEmulator() as elsewhere:
        hosts = Hosts(auth_object=bridge)
        hosts.base_url = elsewhere.base_url("us-1")  # a caller may point falconpy anywhere
        assert status(hosts.query_devices_by_filter(limit=1)) == 401
        # falconpy's own header, handed to the session by hand, is dropped too.
        bridge.session.get(
            f"{elsewhere.base_url('us-1')}/sensors/queries/installers/v1",
            headers=bridge.auth_headers,
            timeout=10,
        )
        assert len(elsewhere.request_log) == 2
        assert not any(authorized(e) for e in elsewhere.request_log)
        bridge.base_url = None  # back to the FalconAuth's
        assert status(hosts.query_devices_by_filter(limit=1)) == 200
        assert [authorized(e) for e in falcon.request_log if e.path.startswith("/devices/")] == [
            True
        ]


def test_falconpy_reads_the_engine_state_truthfully(
    falcon: FalconEmulator, bridge: FalconPyAuth
) -> None:
    assert (bridge.token_status, bridge.token_value, bridge.token_valid) == (None, None, False)
    assert bridge.token_stale
    assert bridge.bearer_token.value is None
    hosts = Hosts(auth_object=bridge)
    token = bridge.falcon.get_token()
    assert falcon.counters.tokens_issued == 1
    assert (bridge.token_status, bridge.token_value) == (201, token.access_token)
    assert hosts.authenticated()
    assert not hosts.token_expired()
    assert hosts.token == token.access_token == bridge.bearer_token.value
    assert bridge.token_expiration == 1799
    assert bridge.renew_window == 120
    assert bridge.auth_headers == {"Authorization": f"Bearer {token.access_token}"}
    assert bridge.creds == {"client_id": CLIENT_ID}
    assert bridge.cred_format_valid
    assert bridge.refreshable
    assert bridge.token()["body"]["access_token"] == token.access_token  # caracara's call
    assert falcon.counters.tokens_issued == 1  # login() and token() hand over, not refetch
    assert CLIENT_SECRET not in repr(bridge)
    assert token.access_token not in repr(bridge)


def test_wrong_credentials_fail_the_login_and_raise_a_clear_error(
    falcon: FalconEmulator,
) -> None:
    bridge = FalconPyAuth(engine(falcon, client_secret="not-the-secret"))
    hosts = Hosts(auth_object=bridge)  # falconpy's login fails quietly, as with its own auth
    assert bridge.token_status == 403
    assert "secret" in (bridge.token_fail_reason or "")
    with pytest.raises(CredentialsError):
        hosts.query_devices_by_filter(limit=1)
    assert status(bridge.login()) == 403


def test_logout_revokes_and_the_next_call_fetches_again(
    falcon: FalconEmulator, bridge: FalconPyAuth
) -> None:
    hosts = Hosts(auth_object=bridge)
    revoked = bridge.token_value
    assert status(hosts.logout()) == 200
    assert falcon.counters.revokes == 1
    assert bridge.token_value is None
    assert status(hosts.query_devices_by_filter(limit=1)) == 200
    assert falcon.counters.tokens_issued == 2
    assert bridge.token_value != revoked


def test_logout_leaves_a_token_shared_through_a_cache_live(
    falcon: FalconEmulator, tmp_path: Path
) -> None:
    """As FalconAuth.close() does: other processes are using the token."""
    bridge = FalconPyAuth(engine(falcon, cache=FileTokenCache(path=tmp_path)))
    hosts = Hosts(auth_object=bridge)
    assert status(hosts.logout()) == 200
    assert status(hosts.query_devices_by_filter(limit=1)) == 200
    counters = falcon.counters
    assert (counters.revokes, counters.tokens_issued) == (0, 1)


def test_revoke_of_another_token_revokes_it(falcon: FalconEmulator, bridge: FalconPyAuth) -> None:
    own = OAuth2(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, base_url=falcon.base_url(REGION))
    assert status(own.token()) == 201
    (other,) = falcon.issued_tokens()
    Hosts(auth_object=bridge)  # the bridge has found its home region, where Falcon revokes
    assert status(bridge.revoke(other)) == 200
    assert falcon.counters.revokes == 1


def test_the_uber_class_runs_on_the_engine(falcon: FalconEmulator) -> None:
    with FalconPyHarness(engine(falcon)) as harness:
        assert status(harness.command("QueryDevicesByFilter", limit=1)) == 200
        assert status(harness.command("oauth2AccessToken")) == 201
        assert falcon.counters.tokens_issued == 1
        assert harness.logout() is True
        assert falcon.counters.revokes == 1
        assert status(harness.command("QueryDevicesByFilter", limit=1)) == 200
    counters = falcon.counters  # leaving the block closed the FalconAuth: revoked again
    assert (counters.tokens_issued, counters.revokes) == (2, 2)


def test_what_belongs_to_the_engine_is_refused_in_its_terms(bridge: FalconPyAuth) -> None:
    for change in (
        lambda: bridge.child_login(member_cid="child"),
        lambda: setattr(bridge, "renew_window", 300),
        lambda: setattr(bridge, "token_value", "forged"),
        lambda: setattr(bridge, "creds", {"client_id": "x", "client_secret": "y"}),
        lambda: setattr(bridge, "session", None),
    ):
        with pytest.raises(ConfigurationError, match="FalconAuth"):
            change()


def test_without_falconpy_the_import_names_the_extra(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "falconpy.py").write_text("raise ImportError('no falconpy here')\n")
    done = subprocess.run(
        [sys.executable, "-c", "import requests_falcon_auth.falconpy"],
        env={"PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "pip install 'requests-falcon-auth[falconpy]'" in done.stderr
