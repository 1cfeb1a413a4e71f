"""The emulator's API data over real sockets: collections, FQL, pagination, handlers, the log."""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from requests_falcon_auth.testing import ApiAnswer, ApiCall, FalconEmulator, RateLimits
from requests_falcon_auth.testing._sample_hosts import iter_sample_hosts, sample_hosts

SECRET = "s3cret-data-tests"
CID = "0123456789abcdef0123456789abcdef"
MEMBER_CID = "FEDCBA9876543210FEDCBA9876543210"  # as an MSSP asks for it: in upper case
QUERY = "/devices/queries/devices/v1"
SCROLL = "/devices/queries/devices-scroll/v1"
ENTITIES = "/devices/entities/devices/v2"
ACTIONS = "/devices/entities/devices-actions/v2"
ALERTS = "/alerts/queries/alerts/v2"
NO_DATA = "/aidr/queries/agents/v1"  # catalogued, no data: Falcon's empty answer
RULE_GROUPS = "/ioarules/entities/rule-groups/v1"  # catalogued writes with no data
NETWORK_LOCATIONS = "/fwmgr/entities/network-locations/v1"  # a catalogued PUT
FIRST_HOST = "efb4519063603a975b1e87170198830e"  # the sample hosts are the same in every run
HOST_FIELDS = {
    "device_id",
    "cid",
    "hostname",
    "platform_name",
    "os_version",
    "product_type_desc",
    "agent_version",
    "first_seen",
    "last_seen",
    "status",
    "local_ip",
    "mac_address",
    "tags",
}


@pytest.fixture
def emu() -> Iterator[FalconEmulator]:
    emulator = FalconEmulator(regions=("us-1",))
    emulator.add_client("data-client", SECRET, cid=CID)
    emulator.add_client("mssp-client", SECRET, member_cids=(MEMBER_CID,))
    with emulator:
        yield emulator


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        s.trust_env = False
        yield s


def token_for(
    session: requests.Session,
    emu: FalconEmulator,
    client_id: str = "data-client",
    member_cid: str | None = None,
) -> str:
    form = {"client_id": client_id, "client_secret": SECRET}
    if member_cid is not None:
        form["member_cid"] = member_cid
    response = session.post(emu.base_url("us-1") + "/oauth2/token", data=form)
    assert response.status_code == 201
    return str(response.json()["access_token"])


class Api:
    """Authenticated calls to one emulator with one token."""

    def __init__(self, session: requests.Session, emu: FalconEmulator, token: str) -> None:
        self.session = session
        self.emu = emu
        self.headers = {"Authorization": f"Bearer {token}"}

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = self.emu.base_url("us-1") + path
        return self.session.request(method, url, headers=self.headers, **kwargs)

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.request("GET", path, params=params)

    def ok(self, path: str, **params: Any) -> dict[str, Any]:
        response = self.get(path, **params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert body["errors"] == []
        return body


@pytest.fixture
def api(session: requests.Session, emu: FalconEmulator) -> Api:
    return Api(session, emu, token_for(session, emu))


def all_ids(emu: FalconEmulator) -> list[str]:
    return [str(host["device_id"]) for host in emu.records("hosts")]


def assert_refused(response: requests.Response, status: int, *words: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["resources"] == []
    assert len(body["errors"]) == 1
    assert body["errors"][0]["code"] == status
    message = str(body["errors"][0]["message"])
    for word in words:
        assert word in message
    assert response.headers["X-Cs-Traceid"] == body["meta"]["trace_id"]
    return message


# -- the sample hosts ------------------------------------------------------------------------------


def test_sample_hosts_out_of_the_box(api: Api, emu: FalconEmulator) -> None:
    response = api.get(QUERY)
    assert response.status_code == 200
    body = response.json()
    assert body["resources"] == all_ids(emu)
    assert body["resources"][0] == FIRST_HOST
    assert body["meta"]["pagination"] == {"offset": 37, "limit": 100, "total": 37}
    assert body["meta"]["powered_by"] == "device-api"
    assert set(body["meta"]) == {"query_time", "powered_by", "trace_id", "pagination"}
    assert response.headers["X-Cs-Traceid"] == body["meta"]["trace_id"]
    assert response.headers["X-Ratelimit-Limit"] == "6000"
    assert response.headers["X-Ratelimit-Remaining"] == "5999"

    hosts = api.ok(ENTITIES, ids=body["resources"])["resources"]
    assert len(hosts) == 37
    assert all(set(host) == HOST_FIELDS for host in hosts)
    assert all(host["cid"] == CID for host in hosts)
    assert [{k: v for k, v in host.items() if k != "cid"} for host in hosts] == emu.records("hosts")
    first = hosts[0]
    assert (first["device_id"], first["hostname"], first["platform_name"]) == (
        FIRST_HOST,
        "WKS-FIN-000",
        "Windows",
    )
    assert (first["first_seen"], first["last_seen"]) == (
        "2024-01-02T14:45:00Z",
        "2024-06-29T19:12:00Z",
    )
    assert first["mac_address"] == "00-50-56-3a-97-5b"
    assert first["tags"] == ["FalconGroupingTags/Finance"]
    assert Counter(h["platform_name"] for h in hosts) == {"Windows": 19, "Mac": 9, "Linux": 9}
    assert sorted(h["hostname"] for h in hosts if h["status"] == "contained") == [
        "WKS-FIN-005",
        "WKS-HR-029",
        "WKS-SAL-017",
    ]
    for host in hosts:
        assert len(host["device_id"]) == 32
        assert set(host["device_id"]) <= set("0123456789abcdef")
        assert host["status"] in ("normal", "contained")
        assert host["first_seen"].endswith("Z")
        assert host["first_seen"] < host["last_seen"]


def test_sample_hosts_are_the_same_in_every_emulator(emu: FalconEmulator) -> None:
    with FalconEmulator(regions=("us-2",)) as other:
        assert other.records("hosts") == emu.records("hosts")
    fingerprint = hashlib.sha256(json.dumps(emu.records("hosts"), sort_keys=True).encode())
    assert fingerprint.hexdigest() == (
        "d29b4a3b8b93230fc08366f18228b3db49188b02bd94ed67d01618c423dfbb60"
    )


def test_an_mssp_token_sees_its_member_cid(session: requests.Session, emu: FalconEmulator) -> None:
    member = Api(session, emu, token_for(session, emu, "mssp-client", MEMBER_CID))
    hosts = member.ok(ENTITIES, ids=[FIRST_HOST])["resources"]
    assert [host["cid"] for host in hosts] == [MEMBER_CID.lower()]
    # The CID field can be filtered on, like any other.
    assert member.ok(QUERY, filter=f"cid:'{MEMBER_CID}'")["meta"]["pagination"]["total"] == 37
    assert member.ok(QUERY, filter=f"cid:'{CID}'")["resources"] == []


# -- pagination ------------------------------------------------------------------------------------


def test_offset_pagination_to_the_end(api: Api, emu: FalconEmulator) -> None:
    pages, offsets, offset, total = [], [], 0, 1
    while offset < total:
        body = api.ok(QUERY, limit=10, offset=offset)
        pages.append(body["resources"])
        pagination = body["meta"]["pagination"]
        assert (pagination["limit"], pagination["total"]) == (10, 37)
        offset, total = pagination["offset"], pagination["total"]
        offsets.append(offset)
    assert [len(page) for page in pages] == [10, 10, 10, 7]
    assert offsets == [10, 20, 30, 37]
    assert [i for page in pages for i in page] == all_ids(emu)


def test_offset_and_limit_are_honoured(api: Api, emu: FalconEmulator) -> None:
    ids = all_ids(emu)
    body = api.ok(QUERY, limit=3, offset=5)
    assert body["resources"] == ids[5:8]
    assert body["meta"]["pagination"] == {"offset": 8, "limit": 3, "total": 37}
    assert api.ok(QUERY, limit=10, offset=35)["resources"] == ids[35:]
    past = api.ok(QUERY, offset=40)
    assert past["resources"] == []
    assert past["meta"]["pagination"] == {"offset": 40, "limit": 100, "total": 37}
    assert api.ok(QUERY, limit=5000)["resources"] == ids


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"limit": "0"}, ("limit", "1 to 5000")),
        ({"limit": "-1"}, ("limit",)),
        ({"limit": "5001"}, ("limit", "5001")),
        ({"limit": "ten"}, ("limit", "ten")),
        ({"offset": "-1"}, ("offset",)),
        ({"offset": "1.5"}, ("offset",)),
    ],
)
def test_bad_limit_or_offset_is_a_400(
    api: Api, params: dict[str, str], words: tuple[str, ...]
) -> None:
    assert_refused(api.get(QUERY, **params), 400, *words)


def test_scroll_pagination_to_the_end(api: Api, emu: FalconEmulator) -> None:
    pages, tokens, token = [], [], ""
    while True:
        body = api.ok(SCROLL, limit=10, offset=token)
        pages.append(body["resources"])
        pagination = body["meta"]["pagination"]
        assert set(pagination) == {"offset", "limit", "total", "expires_at"}
        assert (pagination["limit"], pagination["total"]) == (10, 37)
        token = pagination["offset"]
        assert isinstance(token, str)
        tokens.append(token)
        if not token:
            break
    assert [len(page) for page in pages] == [10, 10, 10, 7]
    assert all(tokens[:-1])
    assert tokens[-1] == ""
    assert len(set(tokens[:-1])) == 3
    assert [i for page in pages for i in page] == all_ids(emu)
    # The scroll endpoint takes more at once than the offset one.
    assert len(api.ok(SCROLL, limit=10_000)["resources"]) == 37
    assert_refused(api.get(SCROLL, limit=10_001), 400, "limit")


def test_a_scroll_answer_says_when_it_expires(api: Api) -> None:
    # Falcon's devices scroll answers carry expires_at: epoch nanoseconds, two minutes on.
    before = time.time_ns()
    first = api.ok(SCROLL, limit=30)["meta"]["pagination"]
    last = api.ok(SCROLL, limit=30, offset=first["offset"])["meta"]["pagination"]
    after = time.time_ns()
    for pagination in (first, last):
        expires_at = pagination["expires_at"]
        assert isinstance(expires_at, int)
        assert before + 120 * 10**9 <= expires_at <= after + 120 * 10**9
    assert last["offset"] == ""
    assert "expires_at" not in api.ok(QUERY, limit=30)["meta"]["pagination"]


def test_a_hundred_thousand_hosts_are_served_page_by_page(api: Api, emu: FalconEmulator) -> None:
    hosts = sample_hosts(100_000)
    assert hosts[:37] == sample_hosts()
    emu.load("hosts", hosts)
    ids = [str(host["device_id"]) for host in hosts]
    assert len(set(ids)) == 100_000
    first = api.ok(QUERY, limit=5000)
    assert first["resources"] == ids[:5000]
    assert first["meta"]["pagination"] == {"offset": 5000, "limit": 5000, "total": 100_000}
    last = api.ok(QUERY, limit=5000, offset=95_000)
    assert last["resources"] == ids[95_000:]
    linux = [i for i, host in zip(ids, hosts) if host["platform_name"] == "Linux"]
    page = api.ok(QUERY, limit=5000, offset=20_000, filter="platform_name:'Linux'")
    assert page["resources"] == linux[20_000:]
    assert page["meta"]["pagination"]["total"] == len(linux) == 25_000
    # A filter on the CID field sees the caller's CID on every record.
    assert api.ok(QUERY, limit=1, filter=f"cid:'{CID}'")["meta"]["pagination"]["total"] == 100_000
    scrolled, token = [], ""
    while True:
        body = api.ok(SCROLL, limit=10_000, offset=token)
        scrolled.extend(body["resources"])
        token = body["meta"]["pagination"]["offset"]
        if not token:
            break
    assert scrolled == ids
    details = api.request("POST", ENTITIES, json={"ids": ids[50_000:55_000]})
    assert details.status_code == 200
    served = details.json()["resources"]
    assert [record["device_id"] for record in served] == ids[50_000:55_000]
    assert served[0] == {**hosts[50_000], "cid": CID}


@pytest.mark.parametrize("count", [-1, 2.0, "37", True])
@pytest.mark.parametrize("make", [sample_hosts, iter_sample_hosts])
def test_sample_hosts_takes_a_whole_count(make: Callable[[int], object], count: object) -> None:
    with pytest.raises(ValueError, match="count"):
        make(count)  # type: ignore[arg-type]  # refused at the call, not at the first host


def test_sample_hosts_come_one_by_one_too() -> None:
    assert list(iter_sample_hosts(40)) == sample_hosts(40)
    assert sample_hosts(40)[:37] == sample_hosts()


def raw_get(
    emu: FalconEmulator, path: str, headers: dict[str, str]
) -> tuple[http.client.HTTPResponse, bytes]:
    """A GET with exactly ``headers`` (no Accept-Encoding unless they have one), and its body."""
    url = urlsplit(emu.base_url("us-1"))
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
    connection.putrequest("GET", path, skip_accept_encoding=True)
    for name, value in headers.items():
        connection.putheader(name, value)
    connection.endheaders()
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response, body


@pytest.mark.parametrize(
    ("accept_encoding", "coded"),
    [
        ("gzip", True),
        ("gzip, deflate", True),  # what requests sends
        ("deflate, GZIP;q=0.5", True),
        ("br;q=1.0, gzip;q=0.001", True),
        ("gzip;q=0", False),
        ("gzip; q=0.0", False),
        ("deflate", False),
        ("identity", False),
        ("*", False),  # nginx, Falcon's front, gzips only when gzip is named
        ("x-gzip", False),
        (None, False),
    ],
)
def test_api_answers_honour_accept_encoding_gzip(
    session: requests.Session, emu: FalconEmulator, accept_encoding: str | None, coded: bool
) -> None:
    headers = {"Authorization": f"Bearer {token_for(session, emu)}"}
    if accept_encoding is not None:
        headers["Accept-Encoding"] = accept_encoding
    response, body = raw_get(emu, QUERY + "?limit=5", headers)
    assert response.status == 200
    assert response.getheader("Content-Length") == str(len(body))
    assert response.getheader("Vary") == "Accept-Encoding"
    assert response.getheader("Content-Encoding") == ("gzip" if coded else None)
    text = gzip.decompress(body) if coded else body
    assert json.loads(text)["resources"] == all_ids(emu)[:5]


def test_errors_are_gzipped_too(session: requests.Session, emu: FalconEmulator) -> None:
    token = token_for(session, emu)
    for headers, status in [
        ({"Authorization": "Bearer not-a-token"}, 401),
        ({"Authorization": f"Bearer {token}"}, 404),
    ]:
        response, body = raw_get(
            emu, ENTITIES + "?ids=unknown", {**headers, "Accept-Encoding": "gzip"}
        )
        assert response.status == status
        assert response.getheader("Content-Encoding") == "gzip"
        assert json.loads(gzip.decompress(body))["errors"][0]["code"] == status


def test_a_head_tells_the_length_of_the_coded_body(api: Api) -> None:
    url = api.emu.base_url("us-1") + QUERY
    head = api.session.head(url, headers={**api.headers, "Accept-Encoding": "gzip"})
    assert head.headers["Content-Encoding"] == "gzip"
    assert int(head.headers["Content-Length"]) > 0
    assert head.content == b""


@pytest.mark.parametrize("region_header", [True, False])
def test_answers_carry_the_region_and_token_answers_only_unless_told_not_to(
    session: requests.Session, region_header: bool
) -> None:
    """``region_header=False`` is for SDKs that move their base URL to the region a token
    answer names; they read an API answer's region as a fact of it, as Falcon sends it."""
    with FalconEmulator(regions=("us-2",), region_header=region_header) as emulator:
        emulator.add_client("region-client", SECRET, region="us-2")
        base = emulator.base_url("us-2")
        form = {"client_id": "region-client", "client_secret": SECRET}
        issued = session.post(base + "/oauth2/token", data=form)
        token = issued.json()["access_token"]
        answers = [
            issued,
            session.get(base + QUERY, headers={"Authorization": f"Bearer {token}"}),
            session.get(
                base + ENTITIES, params={"ids": "x"}, headers={"Authorization": f"Bearer {token}"}
            ),
            session.get(base + QUERY, headers={"Authorization": "Bearer not-a-token"}),
        ]
    assert [answer.status_code for answer in answers] == [201, 200, 404, 401]
    token_region = "us-2" if region_header else None
    regions = [answer.headers.get("X-Cs-Region") for answer in answers]
    assert regions == [token_region, "us-2", "us-2", "us-2"]


def test_scroll_with_filter_and_sort_matches_offset_style(api: Api) -> None:
    query = {"filter": "platform_name:'Windows'", "sort": "hostname.desc"}
    first = api.ok(SCROLL, limit=15, **query)
    second = api.ok(SCROLL, limit=15, offset=first["meta"]["pagination"]["offset"], **query)
    assert second["meta"]["pagination"]["offset"] == ""
    scrolled = first["resources"] + second["resources"]
    assert scrolled == api.ok(QUERY, **query)["resources"]
    assert len(scrolled) == 19


def test_scroll_tokens_are_checked(api: Api) -> None:
    token = api.ok(SCROLL, limit=5)["meta"]["pagination"]["offset"]
    assert_refused(api.get(SCROLL, offset="not-a-token"), 400, "invalid offset token")
    assert_refused(api.get(SCROLL, offset="0"), 400, "invalid offset token")
    assert_refused(api.get(SCROLL, offset=token, filter="status:'normal'"), 400, "another query")


def alerts(n: int) -> list[dict[str, object]]:
    return [
        {"composite_id": f"cid:ind:{i:04d}", "severity": 10 * (i % 10), "status": "new"}
        for i in range(n)
    ]


def test_after_pagination_to_the_end(api: Api, emu: FalconEmulator) -> None:
    emu.add_collection(
        "alerts", query_path=ALERTS, id_field="composite_id", records=alerts(25), pagination="after"
    )
    pages, after = [], ""
    while True:
        body = api.ok(ALERTS, limit=10, after=after)
        pages.append(body["resources"])
        pagination = body["meta"]["pagination"]
        assert set(pagination) == {"after", "limit", "total"}
        assert pagination["total"] == 25
        after = pagination["after"]
        if not after:
            break
    assert [len(page) for page in pages] == [10, 10, 5]
    assert [i for page in pages for i in page] == [f"cid:ind:{i:04d}" for i in range(25)]
    assert body["meta"]["powered_by"] == "falcon-emulator"
    assert_refused(api.get(ALERTS, after="garbage"), 400, "invalid after token")


def test_sort(api: Api, emu: FalconEmulator) -> None:
    hosts = emu.records("hosts")
    by_name = [h["device_id"] for h in sorted(hosts, key=lambda h: str(h["hostname"]).casefold())]
    assert api.ok(QUERY, sort="hostname.asc")["resources"] == by_name
    assert api.ok(QUERY, sort="hostname|asc")["resources"] == by_name
    assert api.ok(QUERY, sort="hostname")["resources"] == by_name
    assert api.ok(QUERY, sort="hostname.desc")["resources"] == by_name[::-1]
    assert api.ok(QUERY, sort="hostname|desc")["resources"] == by_name[::-1]
    newest = [h["device_id"] for h in sorted(hosts, key=lambda h: str(h["first_seen"]))][::-1]
    assert api.ok(QUERY, sort="first_seen.desc", limit=5)["resources"] == newest[:5]
    # Sorted, then paged.
    assert api.ok(QUERY, sort="hostname.asc", limit=10, offset=10)["resources"] == by_name[10:20]


@pytest.mark.parametrize("sort", ["serial_number.asc", "hostname.sideways", "hostname;drop"])
def test_bad_sort_is_a_400(api: Api, sort: str) -> None:
    assert_refused(api.get(QUERY, sort=sort), 400, "unsupported sort")


# -- FQL -------------------------------------------------------------------------------------------


def expected(emu: FalconEmulator, wanted: Callable[[dict[str, Any]], bool]) -> list[str]:
    return [str(host["device_id"]) for host in emu.records("hosts") if wanted(host)]


def _platform(*names: str) -> Callable[[dict[str, Any]], bool]:
    return lambda host: host["platform_name"] in names


@pytest.mark.parametrize(
    ("fql", "wanted", "count"),
    [
        ("platform_name:'Windows'", _platform("Windows"), 19),
        ('platform_name:"windows"', _platform("Windows"), 19),
        ("platform_name: 'WINDOWS'", _platform("Windows"), 19),  # caracara's space
        ("Platform_Name:'Windows'", _platform("Windows"), 19),  # names are case-insensitive
        ("platform_name:['Mac','Linux']", _platform("Mac", "Linux"), 18),
        ("platform_name:[ 'Mac' , \"linux\" ]", _platform("Mac"), 9),  # a list is exact
        ("platform_name:!'Windows'", _platform("Mac", "Linux"), 18),
        ("platform_name: !['Mac','Linux']", _platform("Windows"), 19),
        ("platform_name:'Mac',platform_name:'Linux'", _platform("Mac", "Linux"), 18),
        (
            "platform_name:'Windows'+status:'contained'",
            lambda h: h["platform_name"] == "Windows" and h["status"] == "contained",
            3,
        ),
        (
            "status:'normal' + product_type_desc:'Server'",
            lambda h: h["status"] == "normal" and h["product_type_desc"] == "Server",
            14,
        ),
        (
            "(platform_name:'Mac' , platform_name:'Linux') + status:'normal'",
            lambda h: h["platform_name"] != "Windows" and h["status"] == "normal",
            18,
        ),
        (  # '+' binds tighter than ','
            "platform_name:'Mac',platform_name:'Linux'+status:'contained'",
            _platform("Mac"),
            9,
        ),
        ("hostname:'web*'", lambda h: h["hostname"].startswith("web-"), 1),
        ("hostname:*'*.PROD.example.com'", _platform("Linux"), 9),
        ("hostname:!*'WKS-*'", lambda h: not h["hostname"].startswith("WKS-"), 23),
        ("first_seen:>='2024-03-01'", lambda h: h["first_seen"] >= "2024-03-01", 17),
        (
            "first_seen: >'2024-02-01T00:00:00Z' + first_seen: <= '2024-03-01T00:00:00Z'",
            lambda h: "2024-02-01" < h["first_seen"] <= "2024-03-01",
            10,
        ),
        ("last_seen:>'now-7d'", lambda h: False, 0),  # the samples are from 2024
        ("last_seen:<'now'", lambda h: True, 37),
        ("os_version:~'windows 11'", lambda h: h["os_version"] == "Windows 11", 10),
        (
            "tags:'FalconGroupingTags/Laptops'",
            lambda h: h["tags"] == ["FalconGroupingTags/Laptops"],
            9,
        ),
        ("tags:null", lambda h: h["tags"] == [], 4),
        ("tags:!null", lambda h: h["tags"] != [], 33),
        ("hostname:'wks-fin-000'", lambda h: h["hostname"] == "WKS-FIN-000", 1),
        ("hostname:'no-such-host'", lambda h: False, 0),
        (f"device_id:'{FIRST_HOST}'", lambda h: h["device_id"] == FIRST_HOST, 1),
        ("", lambda h: True, 37),
    ],
)
def test_filters(
    api: Api, emu: FalconEmulator, fql: str, wanted: Callable[[dict[str, Any]], bool], count: int
) -> None:
    body = api.ok(QUERY, filter=fql)
    assert body["resources"] == expected(emu, wanted)
    assert body["meta"]["pagination"]["total"] == count
    assert len(body["resources"]) == count


@pytest.mark.parametrize(
    ("fql", "why"),
    [
        (
            "platform_name:Windows",
            "expected a value (a quoted string, a number, true, false or null) at position 14, found 'W'",
        ),
        (
            "platform_name:'Windows' status:'normal'",
            "expected '+' or ',' between terms (a raw '+' in a query string reads as a space: send it as %2B) at position 24",
        ),
        (
            "platform_name:'Windows'+",
            "expected a property name or '(' at position 24, found the end",
        ),
        (
            "platform_name:'Windows",
            "expected ' to close the string opened at position 14 at position 22",
        ),
        ("platform_name:[]", "at position 15, found ']'"),
        ("platform_name:['Mac' 'Linux']", "expected ',' or ']' in a list at position 21"),
        ("platform_name", "expected ':' after the property 'platform_name' at position 13"),
        ("!platform_name:'Windows'", "expected a property name or '(' at position 0, found '!'"),
        ("(platform_name:'Mac'", "expected ')' or an operator ('+', ',') at position 20"),
        ("platform_name:'Mac')", "expected '+', ',' or the end of the filter at position 19"),
        ("last_seen:>null", "expected a quoted string or a number to compare with at position 11"),
        ("last_seen:=<'2024'", "at position 10, found '='"),
        ("platform_name:True", "at position 14, found 'T'"),
        ("platform_name:5x", "expected the end of '5' (quote strings: 'value') at position 15"),
        ("serial_number:'X1'", "unknown property 'serial_number' at position 0"),
        ("status:'normal'+Serial.number:'X1'", "unknown property 'Serial' at position 16"),
    ],
)
def test_invalid_filters_are_a_400_naming_the_position(
    api: Api, emu: FalconEmulator, fql: str, why: str
) -> None:
    response = api.get(QUERY, filter=fql)
    message = assert_refused(response, 400, why)
    assert message.startswith(f'invalid filter "{fql}": ')
    assert not any(device_id in response.text for device_id in all_ids(emu))


@pytest.mark.parametrize(
    ("fql", "wanted"),
    [  # as caracara's FQLGenerator writes them: "name: <operator><value>" joined with '+'
        ("platform_name: 'Linux'", lambda h: h["platform_name"] == "Linux"),
        ("hostname:*'web*'", lambda h: h["hostname"].startswith("web")),
        (
            "first_seen: >='2024-02-01T00:00:00Z'+first_seen: <'2024-03-01T00:00:00Z'",
            lambda h: "2024-02-01" <= h["first_seen"] < "2024-03-01",
        ),
        (
            "platform_name: ['Windows','Mac']+status: !'contained'+product_type_desc: 'Workstation'",
            lambda h: (
                h["platform_name"] != "Linux"
                and h["status"] != "contained"
                and h["product_type_desc"] == "Workstation"
            ),
        ),
        (
            "hostname: !['SRV-APP-02','SRV-APP-04']+hostname: 'srv*'",
            lambda h: h["hostname"] in ("SRV-APP-06", "SRV-APP-08", "SRV-APP-10"),
        ),
        ("last_seen: >='now-30d'", lambda h: False),  # the samples are from 2024
    ],
)
def test_caracara_style_filters_over_the_wire(
    api: Api, emu: FalconEmulator, fql: str, wanted: Callable[[dict[str, Any]], bool]
) -> None:
    matching = expected(emu, wanted)
    assert api.ok(QUERY, filter=fql)["resources"] == matching
    # Paged with the same filter, in pages of 2.
    pages: list[str] = []
    while len(pages) < len(matching):
        body = api.ok(QUERY, filter=fql, limit=2, offset=len(pages))
        assert body["meta"]["pagination"]["total"] == len(matching)
        pages += body["resources"]
    assert pages == matching


def test_nested_properties_and_lists_of_objects(api: Api, emu: FalconEmulator) -> None:
    emu.load(
        "hosts",
        [
            {"device_id": "d1", "device_policies": {"prevention": {"policy_id": "p1"}}},
            {"device_id": "d2", "groups": [{"id": "g1"}, {"id": "g2", "name": "Web"}]},
            {"device_id": "d3", "groups": [], "policy": {"id": "p1"}, "score": 70},
        ],
    )
    assert api.ok(QUERY, filter="device_policies.prevention.policy_id:'P1'")["resources"] == ["d1"]
    assert api.ok(QUERY, filter="groups.id:'g2'")["resources"] == ["d2"]
    assert api.ok(QUERY, filter="groups.name:'web'+groups.id:'g1'")["resources"] == ["d2"]
    assert api.ok(QUERY, filter="groups.id:null")["resources"] == ["d1", "d3"]
    # An object is a value, but equal to no literal.
    assert api.ok(QUERY, filter="policy:'p1'")["resources"] == []
    assert api.ok(QUERY, filter="policy:*")["resources"] == ["d3"]
    assert api.ok(QUERY, filter="score:>=70")["resources"] == ["d3"]
    assert api.ok(QUERY, filter="score:'70'")["resources"] == ["d3"]
    assert api.ok(QUERY, filter="score:<70.5+score:!69")["resources"] == ["d3"]


# -- entities --------------------------------------------------------------------------------------


def test_entities_by_get_and_by_post(api: Api, emu: FalconEmulator) -> None:
    ids = all_ids(emu)
    wanted = [ids[3], ids[0], ids[20]]
    by_get = api.ok(ENTITIES, ids=wanted)["resources"]
    assert [host["device_id"] for host in by_get] == wanted
    response = api.request("POST", ENTITIES, json={"ids": wanted})
    assert response.status_code == 200
    assert response.json()["resources"] == by_get
    assert response.json()["errors"] == []
    assert response.json()["meta"]["powered_by"] == "device-api"
    # A repeated id is answered once.
    assert len(api.ok(ENTITIES, ids=[ids[0], ids[0]])["resources"]) == 1


def test_unknown_ids_get_an_error_each(api: Api, emu: FalconEmulator) -> None:
    known, unknown = all_ids(emu)[0], "f" * 32
    some = api.request("POST", ENTITIES, json={"ids": [known, unknown]})
    assert some.status_code == 200
    body = some.json()
    assert [host["device_id"] for host in body["resources"]] == [known]
    assert body["errors"] == [
        {"code": 404, "message": f"device_id '{unknown}' not found in 'hosts'", "id": unknown}
    ]
    none = api.get(ENTITIES, ids=[unknown, "e" * 32])
    assert none.status_code == 404
    assert none.json()["resources"] == []
    assert [(e["code"], e["id"]) for e in none.json()["errors"]] == [
        (404, unknown),
        (404, "e" * 32),
    ]


@pytest.mark.parametrize(
    ("method", "kwargs", "words"),
    [
        ("GET", {}, ("ids is required",)),
        ("GET", {"params": {"ids": ""}}, ("ids is required",)),
        ("POST", {"json": {}}, ("ids is required",)),
        ("POST", {"json": {"ids": []}}, ("ids is required",)),
        ("POST", {"data": b"ids=abc"}, ("ids is required",)),
        ("POST", {"json": {"ids": "abc"}}, ("list of strings",)),
        ("POST", {"json": {"ids": [1, 2]}}, ("list of strings",)),
        ("POST", {"json": {"ids": [f"{i:032x}" for i in range(5001)]}}, ("at most 5000",)),
    ],
)
def test_entities_without_ids_are_a_400(
    api: Api, method: str, kwargs: dict[str, Any], words: tuple[str, ...]
) -> None:
    assert_refused(api.request(method, ENTITIES, **kwargs), 400, *words)


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("POST", QUERY, "GET"),
        ("DELETE", SCROLL, "GET"),
        ("PATCH", ENTITIES, "GET, POST"),
        ("DELETE", ENTITIES, "GET, POST"),
    ],
)
def test_other_methods_on_collection_paths_are_a_405(
    api: Api, method: str, path: str, allow: str
) -> None:
    response = api.request(method, path, json={"ids": [FIRST_HOST]})
    assert_refused(response, 405, "Method Not Allowed")
    assert response.headers["Allow"] == allow


def test_head_on_a_query_path_sends_no_body(api: Api) -> None:
    response = api.request("HEAD", QUERY)
    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) > 0
    assert response.content == b""


# -- the gateway comes first -----------------------------------------------------------------------


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token"])
@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", QUERY, {}),
        ("GET", SCROLL, {}),
        ("GET", ENTITIES, {"params": {"ids": FIRST_HOST}}),
        ("POST", ENTITIES, {"json": {"ids": [FIRST_HOST]}}),
        ("POST", ACTIONS, {"json": {"ids": [FIRST_HOST]}}),
    ],
)
def test_no_valid_token_no_data(
    session: requests.Session,
    emu: FalconEmulator,
    authorization: str | None,
    method: str,
    path: str,
    kwargs: dict[str, Any],
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = session.request(method, emu.base_url("us-1") + path, headers=headers, **kwargs)
    assert_refused(response, 401, "access denied, invalid bearer token")
    assert response.json()["meta"]["powered_by"] == "crowdstrike-api-gateway"
    assert not any(device_id in response.text for device_id in all_ids(emu))
    assert emu.counters.api_401 == 1
    assert emu.request_log[-1].client_id is None


def test_an_expired_or_revoked_token_gets_no_data(
    session: requests.Session, emu: FalconEmulator, api: Api
) -> None:
    emu.invalidate_all_tokens()
    response = api.get(QUERY)
    assert_refused(response, 401, "invalid bearer token")
    # The log still says whose token it was.
    assert emu.request_log[-1].client_id == "data-client"


def test_data_calls_spend_the_cids_budget(session: requests.Session) -> None:
    with FalconEmulator(regions=("us-1",), rate_limits=RateLimits(api_per_cid=2)) as emulator:
        emulator.add_client("data-client", SECRET)
        limited = Api(session, emulator, token_for(session, emulator))
        assert limited.get(QUERY).status_code == 200
        assert_refused(limited.get(QUERY, filter="hostname:x"), 400, "invalid filter")
        refused = limited.get(ENTITIES, ids=FIRST_HOST)
        assert_refused(refused, 429, "API rate limit exceeded.")
        assert FIRST_HOST not in refused.text
        assert (emulator.counters.api_ok, emulator.counters.api_429) == (1, 1)


# -- writes and the request log -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", RULE_GROUPS, 201),
        ("PUT", NETWORK_LOCATIONS, 200),
        ("PATCH", RULE_GROUPS, 200),
        ("DELETE", RULE_GROUPS, 200),
    ],
)
def test_writes_with_no_data_get_falcons_status_and_are_logged(
    session: requests.Session, emu: FalconEmulator, method: str, path: str, status: int
) -> None:
    member = Api(session, emu, token_for(session, emu, "mssp-client", MEMBER_CID))
    payload = {"ids": [FIRST_HOST, "b" * 32], "comment": "contain them"}
    response = member.request(method, path, params={"ids": "b" * 32}, json=payload)
    assert response.status_code == status
    body = response.json()
    assert body["resources"] == []
    assert body["errors"] == []
    assert response.headers["X-Cs-Traceid"] == body["meta"]["trace_id"]
    entry = emu.request_log[-1]
    assert (entry.method, entry.path, entry.query, entry.status) == (
        method,
        path,
        "ids=" + "b" * 32,
        status,
    )
    assert entry.json_body == payload
    assert (entry.client_id, entry.member_cid) == ("mssp-client", MEMBER_CID)
    sent = response.request.body
    assert isinstance(sent, bytes)
    assert (entry.body_length, entry.body_sha256) == (len(sent), hashlib.sha256(sent).hexdigest())
    # Reading the body twice gives two copies: the log cannot be changed through it.
    entry.json_body["ids"].clear()
    assert emu.request_log[-1].json_body == payload


def test_a_write_whose_body_is_not_json_is_logged(api: Api, emu: FalconEmulator) -> None:
    response = api.request("PATCH", RULE_GROUPS, data=b"\x00\xff binary")
    assert (response.status_code, response.json()["resources"]) == (200, [])
    entry = emu.request_log[-1]
    assert entry.json_body is None
    assert entry.body_length == 9


def test_oauth2_bodies_are_never_logged(session: requests.Session, emu: FalconEmulator) -> None:
    token = token_for(session, emu, "mssp-client", MEMBER_CID)
    session.post(
        emu.base_url("us-1") + "/oauth2/revoke",
        data={"token": token},
        auth=("mssp-client", SECRET),
    )
    log = emu.request_log
    assert [e.path for e in log] == ["/oauth2/token", "/oauth2/revoke"]
    for entry in log:
        assert (entry.client_id, entry.member_cid) == (None, None)
        assert (entry.body_length, entry.body_sha256, entry.json_text) == (None, None, None)
        assert entry.json_body is None
        dump = repr(entry) + repr(vars(entry))
        assert SECRET not in dump
        assert token not in dump


def test_reads_are_logged_with_their_caller(api: Api, emu: FalconEmulator) -> None:
    api.get(QUERY, limit=1)
    entry = emu.request_log[-1]
    assert (entry.client_id, entry.member_cid, entry.json_body) == ("data-client", None, None)
    assert (entry.body_length, entry.body_sha256) == (0, hashlib.sha256(b"").hexdigest())


def test_a_read_of_a_path_with_no_data_gets_falcons_empty_answer(api: Api) -> None:
    body = api.ok(NO_DATA, x="1")
    assert body["resources"] == []
    assert body["meta"]["pagination"] == {"offset": 0, "limit": 100, "total": 0}
    assert body["meta"]["powered_by"] == "falcon-emulator"
    unknown = api.get("/echo/v1")
    assert (unknown.status_code, unknown.json()["errors"]) == (
        404,
        [{"code": 404, "message": "Not Found"}],
    )


# -- handlers --------------------------------------------------------------------------------------


def test_a_custom_handler(session: requests.Session, emu: FalconEmulator) -> None:
    seen: list[ApiCall] = []

    def contain(call: ApiCall) -> ApiAnswer:
        seen.append(call)
        ids = call.json_body["ids"]  # type: ignore[index]
        return ApiAnswer(
            202,
            [{"id": i, "path": call.path} for i in ids],
            meta={"writes": {"resources_affected": len(ids)}},
            headers=[("X-Custom", "yes")],
        )

    emu.add_handler("post", ACTIONS, contain)
    member = Api(session, emu, token_for(session, emu, "mssp-client", MEMBER_CID))
    response = member.request(
        "POST",
        ACTIONS,
        params=[("action_name", "contain"), ("x", "1"), ("x", "2")],
        json={"ids": ["a1"]},
    )
    assert response.status_code == 202
    body = response.json()
    assert body["resources"] == [{"id": "a1", "path": ACTIONS}]
    assert body["errors"] == []
    assert body["meta"]["writes"] == {"resources_affected": 1}
    assert body["meta"]["trace_id"] == response.headers["X-Cs-Traceid"]
    assert body["meta"]["powered_by"] == "falcon-emulator"
    assert response.headers["X-Custom"] == "yes"
    assert "X-Ratelimit-Remaining" in response.headers
    (call,) = seen
    assert (call.method, call.path, call.query_string) == (
        "POST",
        ACTIONS,
        "action_name=contain&x=1&x=2",
    )
    assert dict(call.query) == {"action_name": ("contain",), "x": ("1", "2")}
    assert (call.param("x"), call.param("missing")) == ("1", None)
    assert call.json_body == {"ids": ["a1"]}
    assert call.body == b'{"ids": ["a1"]}'
    assert (call.client_id, call.member_cid, call.cid, call.region) == (
        "mssp-client",
        MEMBER_CID,
        MEMBER_CID.lower(),
        "us-1",
    )
    assert call.headers["Authorization"] == "Bearer <redacted>"
    emu.remove_handler("POST", ACTIONS)
    after = member.request("POST", ACTIONS, json={"ids": ["a1"]})
    assert after.json()["resources"] == []  # the generic answer to a write again


def test_a_handler_may_return_status_and_resources(api: Api, emu: FalconEmulator) -> None:
    emu.add_handler("GET", "/hosts/v1", lambda call: (200, [{"n": call.param("n")}]))
    assert api.ok("/hosts/v1", n="7")["resources"] == [{"n": "7"}]


def test_a_handler_overrides_a_collection(api: Api, emu: FalconEmulator) -> None:
    emu.add_handler(
        "GET",
        QUERY,
        lambda call: ApiAnswer(resources=["x"], meta={"pagination": {"offset": 1, "total": 1}}),
    )
    body = api.ok(QUERY)
    assert body["resources"] == ["x"]
    assert body["meta"]["pagination"] == {"offset": 1, "total": 1}
    assert len(api.ok(SCROLL)["resources"]) == 37  # other paths keep the collection


def test_a_handlers_error_status_gets_an_error(api: Api, emu: FalconEmulator) -> None:
    emu.add_handler("DELETE", "/things/v1", lambda call: ApiAnswer(409))
    response = api.request("DELETE", "/things/v1")
    assert_refused(response, 409, "Conflict")
    emu.add_handler(
        "PUT", "/things/v1", lambda call: ApiAnswer(422, errors=[{"code": 422, "message": "no"}])
    )
    assert api.request("PUT", "/things/v1").json()["errors"] == [{"code": 422, "message": "no"}]


@pytest.mark.parametrize(
    ("handler", "words"),
    [
        (lambda call: 1 / 0, ("ZeroDivisionError",)),
        (lambda call: {"resources": []}, ("TypeError", "ApiAnswer or (status, resources)")),
        (lambda call: (200, [object()]), ("TypeError",)),
    ],
)
def test_a_failing_handler_is_a_500(
    api: Api, emu: FalconEmulator, handler: Any, words: tuple[str, ...]
) -> None:
    emu.add_handler("GET", "/broken/v1", handler)
    assert_refused(api.get("/broken/v1"), 500, "The handler of GET /broken/v1 failed", *words)
    assert api.get(QUERY).status_code == 200  # the server goes on


def test_a_handler_may_call_the_emulator(api: Api, emu: FalconEmulator) -> None:
    def empty_the_hosts(call: ApiCall) -> ApiAnswer:
        emu.load("hosts", [])  # the emulator's lock is free while a handler runs
        return ApiAnswer(resources=[len(emu.records("hosts"))])

    emu.add_handler("POST", "/empty/v1", empty_the_hosts)
    done: list[int] = []
    worker = threading.Thread(
        target=lambda: done.append(api.request("POST", "/empty/v1").status_code)
    )
    worker.start()
    worker.join(10)
    assert done == [200]
    assert api.ok(QUERY)["meta"]["pagination"]["total"] == 0


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("OPTIONS", "/x", lambda call: (200, [])), ValueError),
        (("GET", "x", lambda call: (200, [])), ValueError),
        (("GET", "/x?y=1", lambda call: (200, [])), ValueError),
        (("GET", "/x", "not callable"), TypeError),
    ],
)
def test_bad_handlers_are_refused(
    emu: FalconEmulator, args: tuple[Any, ...], error: type[Exception]
) -> None:
    with pytest.raises(error):
        emu.add_handler(*args)
    with pytest.raises(KeyError):
        emu.remove_handler("GET", "/never-added")


@pytest.mark.parametrize("status", [204, 304, 100, 600, True])
def test_api_answer_refuses_statuses_it_cannot_carry(status: int) -> None:
    with pytest.raises(ValueError, match="status"):
        ApiAnswer(status)


# -- managing collections --------------------------------------------------------------------------


def test_load_replaces_and_remove_collection_restores_falcons_empty_answers(
    api: Api, emu: FalconEmulator
) -> None:
    emu.load("hosts", [])
    assert api.ok(QUERY)["meta"]["pagination"] == {"offset": 0, "limit": 100, "total": 0}
    assert api.get(ENTITIES, ids=FIRST_HOST).status_code == 404
    # Known fields stay filterable on an empty collection.
    assert api.ok(QUERY, filter="hostname:'x'")["resources"] == []
    mine = [{"device_id": "d1", "hostname": "mine", "site": "Paris"}]
    emu.load("hosts", mine)
    assert emu.records("hosts") == mine
    assert api.ok(QUERY, filter="site:'paris'")["resources"] == ["d1"]
    assert api.ok(ENTITIES, ids="d1")["resources"] == [{**mine[0], "cid": CID}]
    emu.remove_collection("hosts")
    assert api.ok(QUERY)["resources"] == []  # Falcon's empty answer: no data there now
    assert api.ok(QUERY, limit=5)["meta"]["pagination"] == {"offset": 0, "limit": 5, "total": 0}
    with pytest.raises(KeyError, match="hosts"):
        emu.load("hosts", [])


def test_records_are_copies(emu: FalconEmulator) -> None:
    mine = [{"id": "r1", "tags": ["a"]}]
    emu.add_collection("things", entity_path="/things/entities/v1", id_field="id", records=mine)
    mine[0]["tags"].append("b")  # type: ignore[attr-defined]
    copy = emu.records("things")
    assert copy == [{"id": "r1", "tags": ["a"]}]
    copy[0]["tags"] = []
    assert emu.records("things") == [{"id": "r1", "tags": ["a"]}]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"id_field": "id"}, ValueError),  # no path
        ({"id_field": "", "query_path": "/a/v1"}, ValueError),
        ({"id_field": "id", "query_path": "a/v1"}, ValueError),
        ({"id_field": "id", "query_path": "/a/v1", "pagination": "page"}, ValueError),
        ({"id_field": "id", "query_path": "/a/v1", "entity_path": "/a/v1"}, ValueError),
        ({"id_field": "id", "query_path": QUERY}, ValueError),  # the hosts answer it
        ({"id_field": "id", "query_path": "/a/v1", "records": [{"id": 1}]}, ValueError),
        ({"id_field": "id", "query_path": "/a/v1", "records": [{"x": "1"}]}, ValueError),
        (
            {"id_field": "id", "query_path": "/a/v1", "records": [{"id": "1"}, {"id": "1"}]},
            ValueError,
        ),
        ({"id_field": "id", "query_path": "/a/v1", "records": [{"id": "1", "s": {1}}]}, ValueError),
        ({"id_field": "id", "query_path": "/a/v1", "records": ["id"]}, TypeError),
        ({"id_field": "id", "query_path": "/a/v1", "records": {"id": "1"}}, TypeError),
        ({"id_field": "id", "query_path": "/a/v1", "cid_field": "id"}, ValueError),
    ],
)
def test_bad_collections_are_refused(
    emu: FalconEmulator, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        emu.add_collection("things", **kwargs)
    with pytest.raises(KeyError):
        emu.records("things")
