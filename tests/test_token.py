from __future__ import annotations

import logging
import pickle

import pytest

from requests_falcon_auth import Token
from requests_falcon_auth.cache import Timing
from requests_falcon_auth.token import (
    DEFAULT_EXPIRES_IN,
    MAX_EXPIRES_IN,
    NotATokenAnswer,
    token_from_answer,
)

VALUE = "eyJhbGciOiJSUzI1NiJ9.secret-token-value.sig"


def make(expires_in: int = 1799, issued_at: float = 1000.0) -> Token:
    return Token(VALUE, "bearer", expires_in, "us-1", "https://api.crowdstrike.com", issued_at)


def test_repr_and_str_hide_the_value() -> None:
    token = make()
    assert VALUE not in repr(token)
    assert VALUE not in str(token)
    assert "<hidden>" in repr(token)
    assert "us-1" in repr(token)


def test_token_refuses_to_pickle() -> None:
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(make())


def test_expiry_is_measured_from_issue_time() -> None:
    token = make(expires_in=100, issued_at=1000.0)
    assert token.expires_at == 1100.0
    assert not token.expired(now=1099.9)
    assert token.expired(now=1100.0)


def test_renew_window_is_at_most_half_the_lifetime() -> None:
    timing = Timing(renew_window=30)
    token = make(expires_in=100, issued_at=1000.0)
    assert timing.renew_at(token) == 1070.0
    assert timing.fresh(token, now=1069.9)
    assert not timing.fresh(token, now=1070.0)
    assert Timing(renew_window=120).renew_at(token) == 1050.0  # half of 100 s


def test_authorization_header() -> None:
    assert make().authorization == f"Bearer {VALUE}"


def test_token_is_immutable() -> None:
    token = make()
    with pytest.raises(AttributeError):
        token.access_token = "other"


def from_answer(document: object) -> Token:
    return token_from_answer(
        document, region="us-1", base_url="https://api.crowdstrike.com", issued_at=1000.0
    )


def test_a_token_answer_becomes_a_token() -> None:
    token = from_answer({"access_token": VALUE, "token_type": "bearer", "expires_in": 1799})
    assert token == make()


def test_a_token_answer_may_omit_everything_but_the_token() -> None:
    token = from_answer({"access_token": VALUE})
    assert (token.token_type, token.expires_in) == ("bearer", DEFAULT_EXPIRES_IN)


@pytest.mark.parametrize(("expires_in", "seconds"), [(12.9, 12), ("1799.0", 1799), (" 60 ", 60)])
def test_expires_in_is_whole_seconds(expires_in: object, seconds: int) -> None:
    assert from_answer({"access_token": VALUE, "expires_in": expires_in}).expires_in == seconds


def test_a_lifetime_past_a_day_is_cut_to_a_day_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, "requests_falcon_auth"):
        token = from_answer({"access_token": VALUE, "expires_in": 10**12})
    assert token.expires_in == MAX_EXPIRES_IN
    assert caplog.messages == ["Falcon granted a token for 864000 s; treating it as 86400 s"]


def test_a_long_token_type_is_cut() -> None:
    assert from_answer({"access_token": VALUE, "token_type": "b" * 1000}).token_type == "b" * 20


@pytest.mark.parametrize(
    ("document", "what"),
    [
        (None, "no JSON object"),
        ([VALUE], "no JSON object"),
        ({"access_token": "has space"}, "no usable access_token (RFC 6750 token characters,"),
        ({"access_token": "t" * (16 * 1024 + 1)}, "at most 16 KiB)"),
        ({"access_token": VALUE, "expires_in": True}, "an invalid expires_in"),
        ({"access_token": VALUE, "expires_in": "1e3"}, "an invalid expires_in"),
        ({"access_token": VALUE, "expires_in": 0.5}, "an invalid expires_in"),
    ],
)
def test_what_is_not_a_token_says_what_it_holds_instead(document: object, what: str) -> None:
    with pytest.raises(NotATokenAnswer) as caught:
        from_answer(document)
    assert what in str(caught.value)
    assert VALUE not in str(caught.value)
