"""Reliability (issue 5), fuzzing the 401 path: arbitrary API answers and token renewals
through ``responses`` (no sockets); a 401 is healed by one re-send with one fresh token, and
what the user gets matches a model of FalconAuth. Retry waits are recorded, not slept.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fakes import ISSUE, Reply, ScriptedApi
from hypothesis import event, given, settings
from hypothesis import strategies as st
from reliability_support import (
    DEVICES,
    FUZZ_SETTINGS,
    RETRIED_STATUSES,
    US1,
    dump_json,
    envelopes,
    expected_error,
    falcon_auth,
    latin1,
    token_session,
)

from requests_falcon_auth import (
    CredentialsError,
    FalconAuthError,
    RegionError,
)

pytestmark = pytest.mark.slow


LASTING = (CredentialsError, RegionError)  # remembered: no token request for a while

failing_renewals = st.builds(
    Reply,
    st.integers(100, 599).filter(lambda s: s not in RETRIED_STATUSES),
    st.fixed_dictionaries({}, optional={"X-Cs-Traceid": latin1}).map(lambda h: tuple(h.items())),
    st.sampled_from(
        [
            b"",
            b"{}",
            b"[]",
            b'{"access_token": ""}',
            b"\xff",
            b'{"access_token": "x", "expires_in": -5}',
        ]
    ),
).map(
    lambda r: Reply(
        r.status, r.headers, b"" if r.status < 200 or r.status in (204, 304) else r.body
    )
)
renewals = st.one_of(st.just(ISSUE), st.just(ISSUE), st.just(ISSUE), failing_renewals)
api_answers = st.tuples(
    st.one_of(st.just(401), st.just(200), st.integers(100, 599)),
    st.one_of(st.binary(max_size=24), st.builds(dump_json, envelopes, st.just(True))),
).map(lambda a: (a[0], b"" if a[0] < 200 or a[0] in (204, 304) else a[1]))


@dataclass
class UserRequest:
    body: str  # "none" (GET), "bytes", "generator" (cannot be replayed)
    first: tuple[int, bytes]
    second: tuple[int, bytes]


user_requests = st.builds(
    UserRequest, st.sampled_from(["none", "bytes", "generator"]), api_answers, api_answers
)


@dataclass
class Model:
    """What FalconAuth must do, request by request: cached token, remembered failure."""

    renewals: list[Reply]
    token_calls: int = 0
    issued: int = 0
    cached: str | None = None
    remembered: type[FalconAuthError] | None = None

    def fetch(self) -> type[FalconAuthError] | None:
        """The next token answer: caches tok-n, or returns the error it must raise."""
        self.token_calls += 1
        index = self.token_calls - 2
        reply = self.renewals[index] if 0 <= index < len(self.renewals) else ISSUE
        if reply is ISSUE:
            self.issued += 1
            self.cached = f"tok-{self.issued}"
            return None
        error = expected_error(reply.status)
        if error in LASTING:
            self.remembered = error
        return error


def _body_for(kind: str, index: int) -> bytes | Iterator[bytes] | None:
    payload = f"payload-{index}".encode()
    if kind == "bytes":
        return payload
    if kind == "generator":
        return (chunk for chunk in (payload[:4], payload[4:]))
    return None


@settings(FUZZ_SETTINGS, max_examples=300)
@given(
    requests_=st.lists(user_requests, min_size=1, max_size=4),
    renewal_answers=st.lists(renewals, max_size=4),
)
def test_the_401_path_resends_once_with_one_fresh_token(
    requests_: list[UserRequest], renewal_answers: list[Reply]
) -> None:
    fake = ScriptedApi(US1, renewal_answers)
    model = Model(renewal_answers)
    with fake.installed(), token_session() as session:
        auth = falcon_auth("us-1")
        session.auth = auth
        for index, user in enumerate(requests_):
            fake.next_request(user.first, user.second)
            calls_before = (model.token_calls, len(fake.api_calls))
            cache_was_empty = model.cached is None
            expected_tokens: list[str] = []
            # The model: the outcome, and the token each API call must carry.
            expect: tuple[str, object, tuple[int, ...]]
            error = None
            if model.cached is None:
                error = model.remembered or model.fetch()
            if error is not None:
                expect = ("error", error, ())
            else:
                assert model.cached is not None
                expected_tokens.append(model.cached)
                first, second = user.first[0], user.second[0]
                if first != 401 or user.body == "generator":
                    expect = ("response", first, ())
                else:
                    model.cached = None
                    error = model.fetch()
                    if error is not None:
                        expect = ("error", error, ())
                    else:
                        assert model.cached is not None
                        expected_tokens.append(model.cached)
                        expect = ("response", second, (401,))

            body = _body_for(user.body, index)
            method = "GET" if body is None else "POST"
            try:
                response = session.request(method, f"{US1}{DEVICES}?n={index}", data=body)
                got: tuple[str, object, tuple[int, ...]] = (
                    "response",
                    response.status_code,
                    tuple(r.status_code for r in response.history),
                )
            except FalconAuthError as exc:
                got = ("error", type(exc), ())
            assert got == expect, f"request {index}"
            event(f"user got: {got[0]} after {len(expected_tokens)} API calls")
            token_calls = fake.token_calls - calls_before[0]
            assert token_calls == model.token_calls - calls_before[0]
            assert token_calls <= cache_was_empty + (user.first[0] == 401)
            calls = fake.api_calls[calls_before[1] :]
            assert [a for a, _ in calls] == [f"Bearer {t}" for t in expected_tokens]
            assert len({b for _, b in calls}) <= 1, "the re-send carried another body"
        auth.close()
