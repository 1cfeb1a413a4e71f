from __future__ import annotations

import pickle

import pytest

from requests_falcon_auth import Token
from requests_falcon_auth.cache import Timing

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
        token.access_token = "other"  # type: ignore[misc]
