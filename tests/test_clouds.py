from __future__ import annotations

import pytest

from requests_falcon_auth import clouds
from requests_falcon_auth.clouds import CloudTable, Origin, is_loopback_host, normalize, origin_of
from requests_falcon_auth.errors import ConfigurationError


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("us-1", "us-1"),
        ("us1", "us-1"),
        ("US1", "us-1"),
        (" US-2 ", "us-2"),
        ("eu_1", "eu-1"),
        ("usgov1", "us-gov-1"),
        ("gov1", "us-gov-1"),
        ("us-gov-1", "us-gov-1"),
        ("US-GOV-2", "us-gov-2"),
        ("gov2", "us-gov-2"),
        ("us-3", "us-3"),
        ("auto", "auto"),
        ("autodiscover", "auto"),
        ("AUTO", "auto"),
    ],
)
def test_normalize_accepts_every_spelling_seen_in_the_wild(spelling: str, canonical: str) -> None:
    assert normalize(spelling) == canonical


@pytest.mark.parametrize("name", ["us-4", "api.crowdstrike.com", "", "eu"])
def test_unknown_cloud_is_a_configuration_error_listing_the_names(name: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        normalize(name)
    assert "us-gov-1" in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_default_table_is_crowdstrikes() -> None:
    table = CloudTable()
    assert table.base_url("US2") == "https://api.us-2.crowdstrike.com"
    assert table.base_url("gov1") == "https://api.laggar.gcw.crowdstrike.com"
    assert set(table) == set(clouds.DEFAULT_CLOUDS)
    assert {"us-1", "us-2", "eu-1"} == clouds.AUTODISCOVERABLE


def test_region_of_matches_whole_origins_only() -> None:
    table = CloudTable()
    assert table.region_of("https://api.eu-1.crowdstrike.com/devices/v1?x=1") == "eu-1"
    assert table.region_of("https://API.CROWDSTRIKE.COM:443/x") == "us-1"
    assert table.region_of("http://api.crowdstrike.com/x") is None
    assert table.region_of("https://api.crowdstrike.com:8443/x") is None
    assert table.region_of("https://api.crowdstrike.com.evil.example/x") is None
    assert not table.is_known("https://evil.example/")


def test_custom_table_normalises_names_and_strips_slashes() -> None:
    table = CloudTable({"US1": "http://127.0.0.1:8080/", "eu1": "https://gw.example/falcon/"})
    assert dict(table) == {"us-1": "http://127.0.0.1:8080", "eu-1": "https://gw.example/falcon"}
    with pytest.raises(ConfigurationError, match="not in the cloud table"):
        table.base_url("us-2")


@pytest.mark.parametrize(
    "url",
    ["http://gw.example", "http://10.0.0.1:8080", "ftp://127.0.0.1", "api.crowdstrike.com", ""],
)
def test_plain_http_only_for_loopback(url: str) -> None:
    with pytest.raises(ConfigurationError):
        CloudTable({"us-1": url})


def test_table_rejects_auto_as_a_region_and_emptiness() -> None:
    with pytest.raises(ConfigurationError):
        CloudTable({"auto": "https://x.example"})
    with pytest.raises(ConfigurationError):
        CloudTable({})


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("10.0.0.1", False),
        ("example.com", False),
    ],
)
def test_is_loopback_host(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_origin_of() -> None:
    assert origin_of("https://Example.com/x") == Origin("https", "example.com", 443)
    assert origin_of("http://127.0.0.1:81") == Origin("http", "127.0.0.1", 81)
    assert origin_of("mailto:x@example.com") is None
    assert origin_of("https://example.com:99999/") is None
