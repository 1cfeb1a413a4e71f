"""Origins and path prefixes, judged as the parser that routes the request reads them."""

from __future__ import annotations

import pytest

from requests_falcon_auth import ConfigurationError, FalconAuth
from requests_falcon_auth._scope import Origin, Scope, origin_of, scope_of
from requests_falcon_auth.clouds import CloudTable

API = Origin("https", "api.crowdstrike.com", 443)


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://api.crowdstrike.com/x", API),
        ("HTTPS://API.CrowdStrike.com:443/x?y#z", API),
        ("https://api.crowdstrike.com", API),
        ("https://user@api.crowdstrike.com/x", API),  # both parsers agree: userinfo, then host
        ("http://[::1]:8080/x", Origin("http", "::1", 8080)),
        ("http://127.0.0.1:81", Origin("http", "127.0.0.1", 81)),
    ],
)
def test_origins_both_parsers_agree_on(url: str, origin: Origin) -> None:
    assert origin_of(url) == origin


@pytest.mark.parametrize(
    "url",
    [
        "http://evil.example:80\\@api.crowdstrike.com/x",  # urllib3 connects to evil.example
        "https://evil.example\\.api.crowdstrike.com/x",
        "https://api.crowdstrike.com\t.evil.example/x",  # urlsplit deletes the tab
        "https://api.crowd\nstrike.com/x",
        "https://api.crowdstrike.com /x",
        " https://api.crowdstrike.com/x",
        "https://api.crowdstrike.com\x00/x",
        "https://api.crowdstrike.com:99999/",
        "https://api.crowdstrike.com:0/",
        "https://[::1/x",
        "ftp://api.crowdstrike.com/x",
        "mailto:x@api.crowdstrike.com",
        "/devices/v1",
        "",
    ],
)
def test_ambiguous_or_foreign_urls_have_no_origin(url: str) -> None:
    assert origin_of(url) is None


def test_a_bare_origin_covers_every_path_on_it() -> None:
    scope = scope_of("https://api.crowdstrike.com")
    assert scope == Scope(API, "")
    assert scope.covers("https://api.crowdstrike.com/anything?x=1")
    assert not scope.covers("https://api.crowdstrike.com.evil.example/x")


@pytest.mark.parametrize(
    ("url", "covered"),
    [
        ("https://gw.example/falcon", True),
        ("https://gw.example/falcon/devices/v1?limit=1", True),
        ("https://gw.example/falconry/x", False),
        # Judged as sent: a path dot-segment removal would change is outside, wherever it
        # would land, and so is one holding an encoded separator or dot, or a backslash.
        ("https://gw.example/falcon/a/../devices", False),
        ("https://gw.example/falcon/./devices", False),
        ("https://gw.example/falcon/devices/.", False),
        ("https://gw.example/falcon/..%2F../../other", False),  # requests' re-quoted form
        ("https://gw.example/falcon/..%2f%2E%2e/%2e%2e/other", False),
        ("https://gw.example/falcon/x%5C..%5C..%5Cother", False),
        ("https://gw.example/falcon/x\\..\\..\\other", False),
        ("https://gw.example/falcon/report%2Ejson", False),
        ("https://gw.example/other", False),
        ("https://gw.example/falcon/../other", False),
        ("https://gw.example/falcon/%2e%2e/other", False),
        ("https://gw.example/falcon/%2F..%2Fother", False),
        ("https://gw.example/falcon/..%5c..%5cother", False),
        ("https://other.example/falcon/x", False),
    ],
)
def test_a_path_prefix_covers_only_paths_under_it(url: str, covered: bool) -> None:
    scope = scope_of("https://gw.example/falcon")
    assert scope is not None
    assert scope.covers(url) is covered


@pytest.mark.parametrize(
    ("parts", "held"),
    [
        (("https", "api.crowdstrike.com", None), True),  # the scheme's default port
        (("https", "api.crowdstrike.com", 443), True),
        (("https", "api.crowdstrike.com", 8443), False),
        (("http", "api.crowdstrike.com", 443), False),
        (("http", "api.crowdstrike.com", None), False),
        (("https", "api.crowdstrike.com.evil", None), False),
        (("https", "API.crowdstrike.com", None), False),  # not as origin_of spells it
    ],
)
def test_an_origin_parsed_by_the_routing_library_is_held_only_when_equal(
    parts: tuple[str, str, int | None], held: bool
) -> None:
    """What the httpx driver asks of ``request.url`` as httpx parsed it, on the warm path."""
    scope = scope_of("https://api.crowdstrike.com")
    assert scope is not None
    assert scope.holds(*parts) is held


def test_relative_strips_the_prefix_and_keeps_the_query() -> None:
    scope = scope_of("https://gw.example/falcon")
    assert scope is not None
    assert scope.relative("https://gw.example/falcon/devices/v1?limit=1") == "/devices/v1?limit=1"
    assert scope.relative("https://gw.example/falcon") == "/"


def test_a_cloud_table_places_urls_by_the_longest_prefix() -> None:
    table = CloudTable({"us-1": "https://gw.example", "eu-1": "https://gw.example/eu-1"})
    assert table.region_of("https://gw.example/eu-1/devices") == "eu-1"
    assert table.region_of("https://gw.example/devices") == "us-1"
    assert table.region_of("https://gw.example/eu-10/devices") == "us-1"


@pytest.mark.parametrize(
    "base_url",
    [
        "https://user:pass@gw.example/falcon",
        "https://gw.example/falcon?x=1",
        "https://gw.example/falcon#x",
        "https://gw.example\\@evil.example/",
    ],
)
def test_base_urls_with_more_than_an_origin_and_prefix_are_refused(base_url: str) -> None:
    with pytest.raises(ConfigurationError):
        FalconAuth("id", "secret", base_url=base_url)
