"""Falcon's API rate budget as one resource: one cooldown per account, shared through the store.

Falcon counts every API call of a customer account (CID) against one budget per sliding window
(6,000 a minute), whoever makes it: every thread, task, process and host of every API client
of the account. Past it the gateway answers 429 with ``X-Ratelimit-Retryafter`` (the epoch
second by which a slot frees) and did not process the request. Each caller retrying on its own
wakes with all the others and spends the next slots on 429s; so the first 429 sets one
*cooldown*, in the store the tokens are shared through (the process's memory, a host's
directory, a fleet's Redis), and every call of the account waits it out before it goes.

The warm path stays a memory read. This process learns of a cooldown another process set only
from the budget headers: an answer that says the budget is nearly spent (``X-Ratelimit-
Remaining`` at most :data:`LOW_SHARE` of ``X-Ratelimit-Limit``) makes the calls that follow
look in the store before they go, until an answer says the budget has room again. While it is
that low, calls are also spaced: one call per share of the window that frees a slot, so a
fleet approaching the limit slows down instead of running into it.

The account is the credentials' client id and member CID: two API clients of one CID share
Falcon's budget, but nothing on the wire says so, so they keep a cooldown each.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Mapping
from typing import Final, NamedTuple
from urllib.parse import urlsplit

from . import _checks, _fork
from ._flow import BAD_TOKEN_RATE_LIMIT, header_count
from .cache import MemoryTokenCache, TokenCache
from .retry import parse_ratelimit_retryafter
from .token import Clock

__all__ = [
    "DEFAULT_RATE_LIMIT_WAIT",
    "FALCON_WINDOW",
    "LOW_SHARE",
    "RateBudget",
    "RateLimitStats",
    "account_of",
    "forget_token_budgets",
    "token_budget",
]

log = logging.getLogger("requests_falcon_auth.auth")

# A minute: the sliding window Falcon's budget is counted over (not said on the wire).
FALCON_WINDOW: Final = 60.0
# Long enough for the window to free a slot whatever the history; past it the 429 is returned.
DEFAULT_RATE_LIMIT_WAIT: Final = 65.0
# At most this share of the budget left: the calls that follow look for a shared cooldown
# before they go, and are spaced. A quarter leaves room for the calls already in flight.
LOW_SHARE: Final = 0.25
# A wait at least this long is logged (INFO), once per cooldown.
_LOGGED_WAIT: Final = 1.0
# What a 429 without a readable Retryafter waits: a slot of a minute's window frees by then.
_UNSAID_WAIT: Final = 1.0

_LIMIT: Final = "X-Ratelimit-Limit"
_REMAINING: Final = "X-Ratelimit-Remaining"
_RETRY_AFTER: Final = "X-Ratelimit-Retryafter"


def account_of(entry_url: str, client_id: str, member_cid: str | None) -> str:
    """The store's name for the account the credentials act for (no client id in clear)."""
    identity = "\0".join(["rate budget v1", entry_url, client_id, (member_cid or "").lower()])
    return hashlib.sha256(identity.encode()).hexdigest()


class RateLimitStats(NamedTuple):
    """What the account's rate budget has cost this FalconAuth so far.

    Attributes:
        waits: calls that waited for the budget (before going, or before a re-send).
        waited: seconds those waits added up to.
        resent: calls re-sent after the gateway answered 429.
        gave_up: 429s returned to the caller (the wait would have passed ``rate_limit_wait``).
        limit: the budget the last answer stated (``X-Ratelimit-Limit``), if any.
        remaining: what it said was left (``X-Ratelimit-Remaining``), if any.
    """

    waits: int
    waited: float
    resent: int
    gave_up: int
    limit: int | None
    remaining: int | None


class RateBudget:
    """One account's API budget as this process sees it; safe to share between threads.

    Args:
        store: where the cooldown is shared (the tokens' store).
        account: the account's name in the store (:func:`account_of`).
        max_wait: the most seconds one call may wait for the budget in all; 0 never waits.
        window: the window Falcon counts the budget over, in seconds (tests scale it down).
        wall_clock: epoch seconds (Retryafter is an epoch time, shared between hosts).
    """

    def __init__(
        self,
        store: TokenCache,
        account: str,
        *,
        max_wait: float = DEFAULT_RATE_LIMIT_WAIT,
        window: float = FALCON_WINDOW,
        wall_clock: Clock = time.time,
    ) -> None:
        self.max_wait = _checks.seconds(max_wait, "rate_limit_wait", allow_zero=True)
        self.window = _checks.seconds(window, "rate_limit_window")
        self._store = store
        self._account = account
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        # The cooldown's end as far as this process knows (epoch seconds; 0.0: none), whether
        # answers say the budget is nearly spent, and when the next spaced call may go.
        self._until = 0.0
        self._low = False
        # ``not _low and not _until``, kept in step under the lock: the warm path reads it on
        # every call, as an attribute rather than a property (a frame less).
        self.clear = True
        self._next_slot = 0.0
        self._logged_until = 0.0
        self._warned_until = 0.0
        self._limit: int | None = None
        self._remaining: int | None = None
        self._waits = 0
        self._waited = 0.0
        self._resent = 0
        self._gave_up = 0
        _fork.register(self)

    def _after_fork_in_child(self) -> None:
        # A parent thread may have held the lock at the fork; what it guarded stays true.
        self._lock = threading.Lock()

    def _changed(self) -> None:
        """Keeps :attr:`clear` in step with ``_low`` and ``_until`` (under the lock): True when
        no cooldown is known and the budget has room, so a call goes without a look."""
        self.clear = not self._low and not self._until

    def stats(self) -> RateLimitStats:
        """A snapshot of the counters."""
        with self._lock:
            return RateLimitStats(
                self._waits,
                self._waited,
                self._resent,
                self._gave_up,
                self._limit,
                self._remaining,
            )

    def pause(self, *, again: bool = False) -> float:
        """Seconds a call should wait before it goes: to a cooldown's end, and while the budget
        is nearly spent, to its own slot (one a share of the window); 0.0 at once when
        :attr:`clear`. Looks in a shared store only while answers say the budget is low. A
        wait past ``max_wait`` is not waited (0.0): the call goes, and its 429 comes back.

        Args:
            again: asked by a call that has waited already: it waits again only for a
                cooldown that began meanwhile (a call that woke into one would spend a 429).
        """
        if self.clear or not self.max_wait:
            return 0.0
        now = self._wall_clock()
        until = self._until
        if self._low:
            until = max(until, self._store.rate_cooldown(self._account))
        with self._lock:
            self._until = until if until > now else 0.0
            self._changed()
            if again and until <= now:
                return 0.0
            wait = self._slot(max(now, until)) - now
        if wait > self.max_wait:
            return 0.0
        self._log_cooldown(until, wait, "waiting before sending")
        return wait

    def observe(self, headers: Mapping[str, str]) -> None:
        """Reads the budget headers of an answer: whether the budget is nearly spent."""
        # Looked for before it is read: an answer without it (anything but Falcon's API) costs
        # no KeyError inside the mapping's ``get`` (urllib3's and httpx's headers raise one).
        remaining = header_count(headers[_REMAINING]) if _REMAINING in headers else None
        if remaining is None:
            if self._low:  # an answer without the headers: nothing says the budget is low
                with self._lock:
                    self._low = False
                    self._changed()
            return
        limit = header_count(headers.get(_LIMIT))
        if limit == BAD_TOKEN_RATE_LIMIT:  # the bad-token budget's, not the account's
            return
        low = limit is not None and remaining <= limit * LOW_SHARE
        if low != self._low or remaining != self._remaining:
            with self._lock:
                self._low = low
                self._limit, self._remaining = limit, remaining
                self._changed()

    def spent(self, headers: Mapping[str, str], waited: float) -> tuple[float, float | None]:
        """An account-budget 429 for a call that has waited ``waited`` seconds: notes the
        cooldown here (:meth:`share` tells the store). Returns when the budget frees (epoch
        seconds) and how long to wait before re-sending, or None for the wait when that would
        take the call past ``max_wait`` (the 429 goes to the caller)."""
        now = self._wall_clock()
        until = self.cooled(headers)
        wait = until - now
        if self.max_wait and waited + wait <= self.max_wait:
            with self._lock:
                wait = self._slot(until) - now  # the calls this 429 caught go one by one too
        if not self.max_wait or waited + wait > self.max_wait:
            with self._lock:
                self._gave_up += 1
                first = now >= self._warned_until  # once per cooldown; the rest at DEBUG
                if first:
                    self._warned_until = until
            log.log(
                logging.WARNING if first else logging.DEBUG,
                "Falcon's API rate budget for this account is spent for %.1f s more, past "
                "rate_limit_wait=%.1f s; returning the 429",
                wait,
                self.max_wait,
            )
            return until, None
        self._log_cooldown(until, wait, "re-sending then")
        with self._lock:
            self._resent += 1
        return until, wait

    def cooled(self, headers: Mapping[str, str]) -> float:
        """Notes the cooldown a 429 names (here; :meth:`share` tells the store) and returns
        its end, epoch seconds: the time named, or a second on when it names none."""
        now = self._wall_clock()
        value = headers.get(_RETRY_AFTER)
        delay = parse_ratelimit_retryafter(value, now) if value is not None else None
        with self._lock:
            self._until = max(self._until, now + (delay if delay is not None else _UNSAID_WAIT))
            self._low = True
            self._remaining = 0
            self._changed()
            return self._until

    def share(self, until: float) -> None:
        """Tells the store the account's budget is spent until ``until``: every caller of the
        account sharing it waits too (I/O for a shared store; never raises)."""
        self._store.extend_rate_cooldown(self._account, until)

    def waited(self, seconds: float) -> None:
        """Counts a wait that was taken."""
        with self._lock:
            self._waits += 1
            self._waited += seconds

    def _slot(self, start: float) -> float:
        """When a call may go, from ``start`` on: while the budget is nearly spent, calls go
        one per share of the window that frees a slot (window / limit), each taking the next
        (under the lock)."""
        if not self._low or not self._limit:
            return start
        slot = max(start, self._next_slot)
        self._next_slot = slot + self.window / self._limit
        return slot

    def _log_cooldown(self, until: float, wait: float, what: str) -> None:
        """INFO once per cooldown, for a wait worth mentioning."""
        if wait < _LOGGED_WAIT:
            return
        with self._lock:
            if until <= self._logged_until:
                return
            self._logged_until = until
        log.info(
            "Falcon's API rate budget for this account is spent (429): every call of the "
            "account waits %.1f s for it to free, %s",
            wait,
            what,
        )


class _TokenBudgets:
    """The process's budget per token endpoint host and window."""

    def __init__(self) -> None:
        self._budgets: dict[tuple[str, float], RateBudget] = {}
        self._lock = threading.Lock()
        _fork.register(self)

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()

    def of(self, host: str, window: float) -> RateBudget:
        with self._lock:
            budget = self._budgets.get((host, window))
            if budget is None:
                account = account_of(host, "", None)
                budget = RateBudget(MemoryTokenCache(), account, window=window)
                self._budgets[host, window] = budget
            return budget

    def clear(self) -> None:
        """Forgets every budget (a test's cooldown must not hold up the next test's fetch)."""
        with self._lock:
            self._budgets.clear()


_token_budgets: _TokenBudgets | None = None


def token_budget(token_url: str, window: float = FALCON_WINDOW) -> RateBudget:
    """The budget of token requests to ``token_url``'s host, one per process: Falcon counts
    them per source IP (300 a minute), whichever credentials ask, so every FalconAuth of the
    process (an MSSP's hundreds of child CIDs) paces against one cooldown."""
    global _token_budgets  # noqa: PLW0603 -- made on first use, not at import
    if _token_budgets is None:
        _token_budgets = _TokenBudgets()
    return _token_budgets.of(urlsplit(token_url).netloc.lower(), window)


def forget_token_budgets() -> None:
    """Forgets the process's token endpoint budgets."""
    if _token_budgets is not None:
        _token_budgets.clear()
