"""The auth flow driven directly, without sockets: each step a front end is asked to answer."""

from __future__ import annotations

import logging
import time

import pytest
from support import token

from requests_falcon_auth import Token
from requests_falcon_auth._flow import (
    KEEP,
    NEED_TOKEN,
    REWIND,
    Attach,
    Flow,
    NeedFreshToken,
    Pause,
    Reply,
    Resend,
    Routing,
    advance,
    request_flow,
)
from requests_falcon_auth._home import ApiHome
from requests_falcon_auth._ratelimit import RateBudget
from requests_falcon_auth.cache import MemoryTokenCache

API = "https://api.crowdstrike.com"
DEVICES = f"{API}/devices/queries/devices/v1"


def flow_for(
    url: str, method: str = "GET", cloud: str = "us-1", rate_limit_wait: float = 65.0
) -> Flow:
    budget = RateBudget(MemoryTokenCache(), "0" * 64, max_wait=rate_limit_wait)
    return request_flow(Routing(ApiHome(cloud=cloud), budget), method, url)


def attached(flow: Flow, with_token: Token) -> Attach:
    assert advance(flow, None) is NEED_TOKEN
    step = advance(flow, with_token)
    assert isinstance(step, Attach)
    return step


def reply(status: int, url: str = DEVICES, **headers: str) -> Reply:
    return Reply(status, headers, url)


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/devices",
        "http://api.crowdstrike.com/devices",  # another origin: plain http
        "https://api.crowdstrike.com:8443/devices",
        "ftp://api.crowdstrike.com/devices",
        "/devices/queries/devices/v1",
    ],
)
def test_a_request_elsewhere_never_asks_for_a_token(url: str) -> None:
    assert advance(flow_for(url), None) is None


def test_an_answer_that_rejects_nothing_is_kept() -> None:
    flow = flow_for(DEVICES)
    step = attached(flow, token("t1"))
    assert (step.url, step.token.access_token) == (DEVICES, "t1")
    assert advance(flow, reply(200)) is KEEP


@pytest.mark.parametrize("rejection", [reply(401), reply(429, **{"X-Ratelimit-Limit": "15"})])
def test_a_rejection_asks_to_rewind_then_for_a_fresh_token_then_resends_once(
    rejection: Reply,
) -> None:
    flow = flow_for(DEVICES, "POST")
    attached(flow, token("t1"))
    assert advance(flow, rejection) is REWIND
    step = advance(flow, True)
    assert isinstance(step, NeedFreshToken)
    assert step.rejected.access_token == "t1"
    resend = advance(flow, token("t2"))
    assert isinstance(resend, Resend)
    assert resend.token.access_token == "t2"
    assert advance(flow, reply(401)) is KEEP  # one re-send, never two
    assert advance(flow, reply(401)) is KEEP


def test_an_account_429_waits_for_the_named_second_and_goes_again_with_the_token() -> None:
    flow = flow_for(DEVICES)
    attached(flow, token("t1"))
    spent = {"X-Ratelimit-Limit": "6000", "X-Ratelimit-Retryafter": "30"}
    assert advance(flow, reply(429, **spent)) is REWIND
    pause = advance(flow, True)
    assert isinstance(pause, Pause)
    assert 29 < pause.seconds < 30.1
    assert pause.until == pytest.approx(time.time() + 30, abs=1)
    resend = advance(flow, None)
    assert isinstance(resend, Resend)
    assert resend.token.access_token == "t1"  # the budget was spent, not the token
    assert advance(flow, reply(429, **spent)) is REWIND  # waited 30 s of 65: once more
    assert isinstance(advance(flow, True), Pause)
    assert isinstance(advance(flow, None), Resend)
    assert advance(flow, reply(429, **spent)) is not REWIND  # 90 s would pass the 65 s
    assert advance(flow, None) is KEEP


def test_with_rate_limit_wait_zero_an_account_429_is_the_callers_and_still_shared() -> None:
    flow = flow_for(DEVICES, rate_limit_wait=0)
    attached(flow, token("t1"))
    spent = {"X-Ratelimit-Limit": "6000", "X-Ratelimit-Retryafter": "30"}
    pause = advance(flow, reply(429, **spent))
    assert isinstance(pause, Pause)
    assert (pause.seconds, pause.until) == (0.0, pytest.approx(time.time() + 30, abs=1))
    assert advance(flow, None) is KEEP


def test_a_403_is_the_callers() -> None:
    flow = flow_for(DEVICES)
    attached(flow, token("t1"))
    assert advance(flow, reply(403)) is KEEP


def test_a_body_that_cannot_be_rewound_is_not_resent(caplog: pytest.LogCaptureFixture) -> None:
    flow = flow_for(DEVICES, "POST")
    attached(flow, token("t1"))
    assert advance(flow, reply(401)) is REWIND
    with caplog.at_level(logging.WARNING):
        assert advance(flow, False) is KEEP
    assert "cannot be sent again" in caplog.text


def test_a_401_from_another_origin_after_a_redirect_is_not_ours() -> None:
    flow = flow_for(DEVICES)
    attached(flow, token("t1"))
    assert advance(flow, reply(401, url="https://elsewhere.example/landing")) is KEEP


def test_a_later_redirect_hop_can_still_be_healed() -> None:
    """requests shows the flow every hop: a 302 is kept, the next hop's 401 is healed."""
    flow = flow_for(DEVICES)
    attached(flow, token("t1"))
    assert advance(flow, reply(302)) is KEEP
    assert advance(flow, reply(401, url=f"{API}/landing")) is REWIND


def test_a_url_for_another_region_is_retargeted_home_under_autodiscovery() -> None:
    flow = flow_for("https://api.eu-1.crowdstrike.com/devices/v1?limit=5", cloud="auto")
    home = token("t1", base_url="https://api.us-2.crowdstrike.com", region="us-2")
    assert attached(flow, home).url == "https://api.us-2.crowdstrike.com/devices/v1?limit=5"


def test_a_named_cloud_leaves_other_regions_bare() -> None:
    assert advance(flow_for("https://api.eu-1.crowdstrike.com/devices/v1"), None) is None


@pytest.mark.parametrize("limit", ["\u00b2", "\u0661\u0665", "15.0", "-15", "9" * 40, ""])
def test_a_429_with_a_limit_that_is_no_count_is_an_account_429(limit: str) -> None:
    """A superscript two passes ``str.isdigit`` and fails ``int``; Arabic-Indic digits pass
    both. A hostile header neither raises out of the flow nor reads as a count."""
    flow = flow_for(DEVICES, rate_limit_wait=0)
    attached(flow, token("t1"))
    headers = {"X-Ratelimit-Limit": limit, "X-Ratelimit-Remaining": limit}
    assert isinstance(advance(flow, reply(429, **headers)), Pause)
    assert advance(flow, None) is KEEP


def test_429s_returned_at_once_say_the_gateways_wait(caplog: pytest.LogCaptureFixture) -> None:
    """With rate_limit_wait=0 every 429 goes to the caller, with a line naming how long the
    budget stays spent: a thousand of them must not push that figure out, nor warn a
    thousand times."""
    budget = RateBudget(MemoryTokenCache(), "0" * 64, max_wait=0)
    budget.observe({"X-Ratelimit-Limit": "6000", "X-Ratelimit-Remaining": "0"})
    spent = {"X-Ratelimit-Limit": "6000", "X-Ratelimit-Retryafter": "2"}
    with caplog.at_level(logging.DEBUG, "requests_falcon_auth"):
        for _ in range(1000):
            assert budget.spent(spent, 0.0)[1] is None
    assert "spent for 2.0 s more" in caplog.records[-1].getMessage()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # once per cooldown
