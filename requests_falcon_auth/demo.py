"""``falcon-auth demo``: FalconAuth's life story told against the embedded emulator.

Needs no credentials and no network. Each step states a claim and the emulator's counters that
back it. Renewal is shown without waiting half an hour: FalconAuth and the emulator share a clock
that the demo moves forward (a :class:`~requests_falcon_auth.testing.ManualClock`).
"""

from __future__ import annotations

import secrets
from typing import TextIO

import requests

from ._sources import fetched
from .auth import FalconAuth
from .testing import FalconEmulator, ManualClock

__all__ = ["run_demo"]

_DEVICES = "/devices/queries/devices/v1"


def run_demo(out: TextIO) -> int:
    """Runs the narrated demo; returns 0."""
    clock = ManualClock()
    secret = secrets.token_urlsafe(24)

    def say(step: str, text: str) -> None:
        out.write(f"{step:>9}  {text}\n")
        out.flush()

    with FalconEmulator(regions=("us-1", "us-2"), clock=clock) as emulator:
        emulator.add_client("demo-client", secret, region="us-2")
        say(
            "emulator",
            f"Falcon us-1 at {emulator.base_url('us-1')}, us-2 at "
            f"{emulator.base_url('us-2')}; API client 'demo-client' lives in us-2",
        )
        auth = FalconAuth("demo-client", secret, clouds=emulator.clouds, clock=clock)
        session = auth.attach(requests.Session())
        count = emulator.counters
        say("lazy", f"FalconAuth() built: {count.token_requests} token requests so far")

        us1_url = emulator.base_url("us-1") + _DEVICES
        response = session.get(us1_url)
        count = emulator.counters
        say(
            "fetch",
            f"first GET -> {response.status_code}: us-1 redirected the credentials home "
            f"({count.token_outcomes['redirected']} x 308), {count.tokens_issued} token issued in "
            f"{auth.region}; the request went to {auth.base_url}",
        )

        for _ in range(9):
            session.get(us1_url)
        count = emulator.counters
        say("reuse", f"{count.api_calls} API calls, still {count.tokens_issued} token issued")

        clock.advance(1700)
        response = session.get(us1_url)
        fetched(auth.port.tokens).wait_for_renewal(30)
        count = emulator.counters
        say(
            "renew",
            f"1700 s later (the clock moved on) -> {response.status_code} with the still-valid "
            "token, while a background thread renewed it ahead of expiry; tokens issued: "
            f"{count.tokens_issued}",
        )

        emulator.invalidate_all_tokens()
        response = session.get(us1_url)
        count = emulator.counters
        history = [r.status_code for r in response.history]
        say(
            "heal",
            f"server invalidated every token -> {response.status_code} after {history}: one 401, "
            f"one fresh token, one re-send (401s seen by Falcon: {count.api_401}, tokens issued: "
            f"{count.tokens_issued})",
        )

        last = auth.get_token()
        session.close()
        count = emulator.counters
        with requests.Session() as raw:
            after = raw.get(auth.base_url + _DEVICES, headers={"Authorization": last.authorization})
        say(
            "revoke",
            f"session.close() revoked the {count.revokes} live tokens this process fetched; "
            f"the last one now gets {after.status_code}",
        )
    say("done", "no token is left alive")
    return 0
