"""Faults a test injects: failed, delayed or held token answers, rejected calls, dropped links."""

from __future__ import annotations

import threading
from collections import deque
from types import TracebackType
from typing import NamedTuple

__all__ = ["Faults", "InjectedFailure", "TokenGate"]


class TokenGate:
    """Holds token answers until :meth:`release` (from ``FalconEmulator.hold_token_requests``).

    Thread-safe. As a context manager it releases on exit, so a failing test cannot leave
    server threads blocked.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._held = 0
        self._released = False

    @property
    def held(self) -> int:
        """How many token requests are blocked at the gate now."""
        with self._cond:
            return self._held

    @property
    def released(self) -> bool:
        """True once :meth:`release` was called."""
        with self._cond:
            return self._released

    def release(self) -> None:
        """Lets every held token request, and every later one, through."""
        with self._cond:
            self._released = True
            self._cond.notify_all()

    def wait_for_held(self, n: int, timeout: float | None = None) -> bool:
        """Blocks until ``n`` token requests are held at the gate.

        Returns:
            True once they are, False if ``timeout`` seconds passed first.
        """
        with self._cond:
            return self._cond.wait_for(lambda: self._held >= n, timeout)

    def pass_through(self) -> None:
        """Blocks the calling server thread until the gate is released."""
        with self._cond:
            if self._released:
                return
            self._held += 1
            self._cond.notify_all()
            try:
                self._cond.wait_for(lambda: self._released)
            finally:
                self._held -= 1
                self._cond.notify_all()

    def __enter__(self) -> TokenGate:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"TokenGate(held={self.held}, released={self.released})"


class InjectedFailure(NamedTuple):
    """One token request to fail: its status and optional retry delay in seconds."""

    status: int
    retry_after: float | None


class Faults:
    """The pending injected faults. Thread-safe; each ``take_*`` consumes one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._token_failures: deque[InjectedFailure] = deque()
        self._token_delay = 0.0
        self._gate: TokenGate | None = None
        self._api_rejections = 0
        self._drops = 0

    def fail_tokens(self, n: int, failure: InjectedFailure) -> None:
        """Queues ``n`` failed token answers after any already queued."""
        with self._lock:
            self._token_failures.extend([failure] * n)

    def delay_tokens(self, seconds: float) -> None:
        """Delays every token answer by ``seconds`` (0 to stop)."""
        with self._lock:
            self._token_delay = seconds

    def hold_tokens(self) -> TokenGate:
        """Installs a new gate in front of token answers, releasing any previous one."""
        gate = TokenGate()
        with self._lock:
            previous, self._gate = self._gate, gate
        if previous is not None:
            previous.release()
        return gate

    def reject_api(self, n: int) -> None:
        """Makes the next ``n`` API calls fail with 401."""
        with self._lock:
            self._api_rejections += n

    def drop(self, n: int) -> None:
        """Makes the next ``n`` requests close their connection unanswered."""
        with self._lock:
            self._drops += n

    def token_hold(self) -> tuple[TokenGate | None, float]:
        """The current gate (if unreleased) and delay for a token answer."""
        with self._lock:
            gate = self._gate
            if gate is not None and gate.released:
                gate = self._gate = None
            return gate, self._token_delay

    def take_token_failure(self) -> InjectedFailure | None:
        """Consumes one queued token failure, if any."""
        with self._lock:
            return self._token_failures.popleft() if self._token_failures else None

    def take_api_rejection(self) -> bool:
        """Consumes one pending API rejection, if any."""
        with self._lock:
            if self._api_rejections:
                self._api_rejections -= 1
                return True
            return False

    def take_drop(self) -> bool:
        """Consumes one pending dropped connection, if any."""
        with self._lock:
            if self._drops:
                self._drops -= 1
                return True
            return False

    def release_all(self) -> None:
        """Releases any gate and stops delaying (at shutdown)."""
        with self._lock:
            gate, self._gate = self._gate, None
            self._token_delay = 0.0
        if gate is not None:
            gate.release()
