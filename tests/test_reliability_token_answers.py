"""Reliability (issue 5), fuzzing the token endpoint: OAuth2 and FalconAuth get arbitrary
token-endpoint answers (statuses, headers, bodies, redirects) through ``responses`` (no sockets)
and must end with a token or a FalconAuthError, retrying only what may be retried, within
max_wait, and never sending the credentials off Falcon. Retry waits are recorded, not slept.
The strategies and the fake Falcon are in ``reliability_support``.
"""

from __future__ import annotations

import pytest
from fakes import Reply
from hypothesis import given, settings
from reliability_support import (
    FUZZ_SETTINGS,
    check_token_scenario,
    retries,
    scenarios,
)

from requests_falcon_auth import (
    FalconRetry,
)

pytestmark = pytest.mark.slow


@settings(FUZZ_SETTINGS, max_examples=400)
@given(scenario=scenarios, retry=retries)
def test_oauth2_token_gives_a_token_or_a_falcon_auth_error(
    scenario: tuple[str, list[Reply]], retry: FalconRetry
) -> None:
    mode, answers = scenario
    check_token_scenario(mode, answers, retry, via_auth=False)


@settings(FUZZ_SETTINGS, max_examples=300)
@given(scenario=scenarios, retry=retries)
def test_falcon_auth_never_calls_the_api_without_the_issued_token(
    scenario: tuple[str, list[Reply]], retry: FalconRetry
) -> None:
    mode, answers = scenario
    check_token_scenario(mode, answers, retry, via_auth=True)
