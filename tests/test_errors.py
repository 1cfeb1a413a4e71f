from __future__ import annotations

import pickle

import pytest

from requests_falcon_auth.errors import (
    ConfigurationError,
    CredentialsError,
    FalconAuthError,
    RateLimitError,
    RegionError,
    TokenEndpointError,
    parse_envelope,
)


def test_envelope_trace_id_and_messages() -> None:
    body = b'{"meta": {"trace_id": "t-1"}, "errors": [{"code": 403, "message": "nope"}, "raw"]}'
    envelope = parse_envelope(body, {})
    assert envelope.trace_id == "t-1"
    assert envelope.messages == ("nope", "raw")
    assert envelope.well_formed


def test_envelope_header_trace_id_wins_and_survives_junk() -> None:
    envelope = parse_envelope(b"<html>502 Bad Gateway</html>", {"X-Cs-Traceid": "t-2"})
    assert envelope.trace_id == "t-2"
    assert envelope.messages == ()
    assert not envelope.well_formed


@pytest.mark.parametrize(
    "body",
    [b"", b"null", b"[]", b'{"errors": 3}', b'{"errors": [1, null]}', b"\xff\xfe", b'{"meta": 1}'],
)
def test_envelope_never_raises(body: bytes) -> None:
    envelope = parse_envelope(body, {})
    assert envelope.messages == ()


@pytest.mark.parametrize(
    "cls", [ConfigurationError, CredentialsError, RegionError, TokenEndpointError]
)
def test_errors_pickle_with_their_context(cls: type[FalconAuthError]) -> None:
    error = cls("do this", status_code=403, trace_id="t", errors=("m",), region="us-2")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is cls
    assert (copy.status_code, copy.trace_id, copy.errors, copy.region) == (403, "t", ("m",), "us-2")
    assert str(copy) == "do this (trace id t)"


def test_rate_limit_error_keeps_retry_after_through_pickle() -> None:
    error = RateLimitError("slow down", retry_after=12.5, status_code=429)
    copy = pickle.loads(pickle.dumps(error))
    assert copy.retry_after == 12.5
    assert copy.status_code == 429


def test_configuration_error_is_a_value_error() -> None:
    assert issubclass(ConfigurationError, ValueError)
    assert issubclass(ConfigurationError, FalconAuthError)
