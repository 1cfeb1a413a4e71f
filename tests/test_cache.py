"""Single flight, stale-while-refresh and negative caching, with real threads and a fake clock."""

from __future__ import annotations

import logging
import pickle
import threading
from collections.abc import Callable

import pytest
from support import CountingCache, bound_cache, present, token

from requests_falcon_auth._provider import RENEWAL_PAUSE_AFTER_FAILURE, TokenProvider
from requests_falcon_auth.cache import CacheKey, MemoryTokenCache
from requests_falcon_auth.errors import (
    CredentialsError,
    FalconAuthError,
    RateLimitError,
    TokenEndpointError,
)
from requests_falcon_auth.testing import ManualClock
from requests_falcon_auth.token import Token

KEY = CacheKey.for_credentials("https://api.crowdstrike.com", "client-a", "secret", None)
THREADS = 32


class GatedFetch:
    """A fetch that blocks until released, counting calls; issues tok-1, tok-2..."""

    def __init__(self, clock: ManualClock, expires_in: int = 1799) -> None:
        self.clock = clock
        self.expires_in = expires_in
        self.calls = 0
        self.entered = threading.Event()
        self.release = threading.Event()
        self.error: FalconAuthError | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Token:
        with self._lock:
            self.calls += 1
            number = self.calls
        issued_at = self.clock()
        self.entered.set()
        assert self.release.wait(30)
        if self.error is not None:
            raise self.error
        return Token(f"tok-{number}", "bearer", self.expires_in, "us-1", "https://x", issued_at)


def run_threads(
    count: int, target: Callable[[], object]
) -> tuple[list[object], list[threading.Thread]]:
    results: list[object] = []
    lock = threading.Lock()
    start = threading.Barrier(count)

    def worker() -> None:
        start.wait()
        try:
            outcome: object = target()
        except FalconAuthError as exc:
            outcome = exc
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    return results, threads


def join(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join(30)
        assert not thread.is_alive()


def test_many_threads_without_a_token_cause_one_fetch() -> None:
    clock = ManualClock()
    cache = CountingCache(clock)
    fetch = GatedFetch(clock)
    provider = TokenProvider(cache, KEY, fetch, renew_window=120, clock=clock)
    results, threads = run_threads(THREADS, provider.get)
    cache.wait_for_attempts(THREADS)  # every thread is fetching or queued behind the fetch
    fetch.release.set()
    join(threads)
    assert fetch.calls == 1
    assert {r.access_token for r in results} == {"tok-1"}  # type: ignore[attr-defined]


def test_waiters_share_the_fetchers_failure() -> None:
    clock = ManualClock()
    cache = CountingCache(clock)
    fetch = GatedFetch(clock)
    fetch.error = TokenEndpointError("Falcon is down", status_code=500)
    provider = TokenProvider(cache, KEY, fetch, renew_window=120, clock=clock)
    results, threads = run_threads(THREADS, provider.get)
    cache.wait_for_attempts(THREADS)
    fetch.release.set()
    join(threads)
    assert fetch.calls == 1
    assert all(isinstance(r, TokenEndpointError) for r in results)
    assert len(results) == THREADS
    # A transient failure is not remembered for callers that come later.
    fetch.error = None
    assert provider.get().access_token == "tok-2"


def test_a_stale_token_is_renewed_in_the_background_while_every_caller_keeps_using_it() -> None:
    clock = ManualClock(now=2000.0)
    cache = bound_cache(clock)
    cache.set(KEY, token("old", issued_at=2000.0 - 1700))  # 99 s left: inside the 120 s window
    fetch = GatedFetch(clock)
    provider = TokenProvider(cache, KEY, fetch, renew_window=120, clock=clock)
    assert provider.get().access_token == "old"  # the caller that noticed does not wait
    assert fetch.entered.wait(30)
    # The renewal is blocked in flight: nobody may wait for it, nobody starts another.
    results, threads = run_threads(THREADS, provider.get)
    join(threads)
    assert {r.access_token for r in results} == {"old"}  # type: ignore[attr-defined]
    assert fetch.calls == 1
    fetch.release.set()
    assert provider.wait_for_renewal(30)
    assert provider.get().access_token == "tok-1"
    assert fetch.calls == 1
    assert [t.name for t in threading.enumerate() if t.name == "falcon-auth-renewal"] == []


def stale_and_failing() -> tuple[ManualClock, GatedFetch, TokenProvider]:
    """A provider whose cached token "old" has 99 s left (inside the window) and whose token
    endpoint is down."""
    clock = ManualClock(now=2000.0)
    cache = bound_cache(clock)
    cache.set(KEY, token("old", issued_at=2000.0 - 1700))
    fetch = GatedFetch(clock)
    fetch.release.set()
    fetch.error = TokenEndpointError("down")
    return clock, fetch, TokenProvider(cache, KEY, fetch, renew_window=120, clock=clock)


def test_a_failed_renewal_pauses_renewals_then_a_later_caller_tries_again() -> None:
    clock, fetch, provider = stale_and_failing()
    provider.get()
    assert provider.wait_for_renewal(30)
    for _ in range(20):
        assert provider.get().access_token == "old"
        assert provider.wait_for_renewal(30)
    assert fetch.calls == 1  # paused after the failure
    clock.now += RENEWAL_PAUSE_AFTER_FAILURE
    fetch.error = None
    provider.get()
    assert provider.wait_for_renewal(30)
    assert provider.get().access_token == "tok-2"


def test_the_renewal_error_reaches_callers_only_when_the_token_expires() -> None:
    clock, _, provider = stale_and_failing()
    assert provider.get().access_token == "old"
    assert provider.wait_for_renewal(30)
    clock.now += 100  # "old" expired
    with pytest.raises(TokenEndpointError):
        provider.get()


def test_failed_renewal_keeps_the_valid_token(caplog: pytest.LogCaptureFixture) -> None:
    _, _, provider = stale_and_failing()
    with caplog.at_level(logging.WARNING, logger="requests_falcon_auth"):
        assert provider.get().access_token == "old"
        assert provider.wait_for_renewal(30)  # the renewal thread logs the failure
    assert "Renewing the Falcon token failed" in caplog.text


def test_fresh_token_is_served_from_cache() -> None:
    clock = ManualClock()
    fetch = GatedFetch(clock)
    fetch.release.set()
    provider = TokenProvider(bound_cache(clock), KEY, fetch, renew_window=120, clock=clock)
    first = provider.get()
    clock.now += 1600  # still outside the renew window
    assert provider.get() is first
    assert fetch.calls == 1
    clock.now += 100  # inside it: renewed in the background
    assert provider.get() is first
    assert provider.wait_for_renewal(30)
    assert provider.get().access_token == "tok-2"
    clock.now += 1799  # tok-2 expired: fetched again
    assert provider.get().access_token == "tok-3"


def test_renew_window_is_at_most_half_the_lifetime() -> None:
    clock = ManualClock()
    fetch = GatedFetch(clock, expires_in=10)
    fetch.release.set()
    provider = TokenProvider(bound_cache(clock), KEY, fetch, renew_window=120, clock=clock)
    provider.get()
    clock.now += 4.9
    provider.get()
    assert provider.wait_for_renewal(30)
    assert fetch.calls == 1
    clock.now += 0.1
    provider.get()
    assert provider.wait_for_renewal(30)
    assert fetch.calls == 2


def test_credential_failures_are_remembered_briefly() -> None:
    clock = ManualClock()
    fetch = GatedFetch(clock)
    fetch.release.set()
    fetch.error = CredentialsError("wrong secret", status_code=403)
    provider = TokenProvider(
        bound_cache(clock), KEY, fetch, renew_window=120, clock=clock, failure_ttl=10
    )
    for _ in range(50):
        with pytest.raises(CredentialsError):
            provider.get()
    assert fetch.calls == 1
    clock.now += 10
    fetch.error = None
    assert provider.get().access_token == "tok-2"


def test_rate_limit_is_remembered_for_its_retry_after() -> None:
    clock = ManualClock()
    fetch = GatedFetch(clock)
    fetch.release.set()
    fetch.error = RateLimitError("slow down", retry_after=30, status_code=429)
    provider = TokenProvider(bound_cache(clock), KEY, fetch, renew_window=120, clock=clock)
    with pytest.raises(RateLimitError):
        provider.get()
    clock.now += 29
    with pytest.raises(RateLimitError) as caught:
        provider.get()
    assert caught.value.retry_after == 30
    assert fetch.calls == 1
    clock.now += 1
    fetch.error = None
    assert provider.get().access_token == "tok-2"


def test_invalidate_is_compare_and_swap() -> None:
    clock = ManualClock()
    cache = bound_cache(clock)
    provider = TokenProvider(cache, KEY, GatedFetch(clock), renew_window=120, clock=clock)
    current = token("current", issued_at=clock.now)
    cache.set(KEY, current)
    assert not provider.invalidate(token("older", issued_at=clock.now))
    assert cache.get(KEY) is current
    assert provider.invalidate(current)
    assert cache.get(KEY) is None
    assert not provider.invalidate(current)


def test_a_token_dropped_through_one_provider_is_never_served_by_another() -> None:
    """Providers sharing a store keep their last fresh token (the warm path skips the store),
    but only while the store is unchanged: a token another provider dropped is not served."""
    clock = ManualClock()
    cache = bound_cache(clock)
    fetch = GatedFetch(clock)
    fetch.release.set()
    one, two = (TokenProvider(cache, KEY, fetch, renew_window=120, clock=clock) for _ in "12")
    first = one.get()
    assert two.get() is first  # both now hold it
    assert two.peek() is first
    assert one.invalidate(first)
    assert two.peek() is None
    assert two.get().access_token == "tok-2"
    assert one.get().access_token == "tok-2"
    cache.set(KEY, token("stored-elsewhere", issued_at=clock.now))
    assert [one.get().access_token, present(two.peek()).access_token] == ["stored-elsewhere"] * 2


def test_the_warm_path_still_renews_when_the_window_opens() -> None:
    clock = ManualClock()
    fetch = GatedFetch(clock)
    fetch.release.set()
    provider = TokenProvider(bound_cache(clock), KEY, fetch, renew_window=120, clock=clock)
    assert provider.get().access_token == "tok-1"
    clock.now += 1799 - 119
    assert provider.get().access_token == "tok-1"  # served at once, renewed meanwhile
    assert provider.wait_for_renewal(30)
    assert provider.get().access_token == "tok-2"
    assert fetch.calls == 2


def test_memory_cache_drops_expired_tokens() -> None:
    clock = ManualClock()
    cache = bound_cache(clock)
    cache.set(KEY, token("t", issued_at=clock.now, expires_in=60))
    clock.now += 59
    assert cache.get(KEY) is not None
    clock.now += 1
    assert cache.get(KEY) is None
    assert len(cache) == 0


def test_memory_cache_pickles_empty() -> None:
    cache = MemoryTokenCache()
    cache.set(KEY, token("t", issued_at=0.0, expires_in=10**9))
    copy = pickle.loads(pickle.dumps(cache))
    assert copy.get(KEY) is None
    copy.set(KEY, token("u", issued_at=0.0, expires_in=10**9))
    assert copy.get(KEY) is not None


def test_key_lock_is_exclusive_and_honours_timeouts() -> None:
    cache = MemoryTokenCache()
    first, second = cache.lock(KEY), cache.lock(KEY)
    assert first.acquire()
    assert not second.acquire(blocking=False)
    assert not second.acquire(timeout=0.01)
    other = CacheKey.for_credentials("https://api.crowdstrike.com", "client-b", "secret", None)
    assert cache.lock(other).acquire(blocking=False)
    first.release()
    assert second.acquire(blocking=False)


def test_a_wedged_fetch_makes_waiters_give_up_with_a_clear_error() -> None:
    clock = ManualClock()
    cache = bound_cache(clock)
    held = cache.lock(KEY)
    assert held.acquire()
    provider = TokenProvider(
        cache, KEY, GatedFetch(clock), renew_window=120, clock=clock, lock_timeout=0.01
    )
    with pytest.raises(TokenEndpointError, match="waiting for another thread"):
        provider.get()
    held.release()


def test_cache_key_reveals_no_credentials_and_follows_the_secret() -> None:
    key = CacheKey.for_credentials("https://api.crowdstrike.com", "client-a", "secret-1", "cid")
    assert "client-a" not in key.name
    assert "secret-1" not in repr(key)
    assert key.secret not in repr(key).encode()
    assert key == CacheKey.for_credentials(
        "https://api.crowdstrike.com", "client-a", "secret-1", "cid"
    )
    for other in [
        CacheKey.for_credentials("https://api.crowdstrike.com", "client-a", "secret-2", "cid"),
        CacheKey.for_credentials("https://api.crowdstrike.com", "client-a", "secret-1", None),
        CacheKey.for_credentials("https://api.us-2.crowdstrike.com", "client-a", "secret-1", "cid"),
        CacheKey.for_credentials("https://api.crowdstrike.com", "client-b", "secret-1", "cid"),
    ]:
        assert other.name != key.name
    with pytest.raises(TypeError):
        pickle.dumps(key)
