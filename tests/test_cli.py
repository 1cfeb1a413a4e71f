from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
import responses
from support import form_of

from requests_falcon_auth import FalconAuth, FalconSession
from requests_falcon_auth.cli import _parser, _plain_token, main

US1 = "https://api.crowdstrike.com"
SECRET = "cli-secret-value-42"


@pytest.fixture(autouse=True)
def own_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Each test (and the processes it starts) gets its own token cache: platformdirs puts the
    user's cache directory under XDG_CACHE_HOME."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    return tmp_path / "xdg-cache" / "requests-falcon-auth"


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FALCON_MEMBER_CID", "FALCON_CLOUD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FALCON_CLIENT_ID", "cli-client")
    monkeypatch.setenv("FALCON_CLIENT_SECRET", SECRET)


@pytest.fixture
def falcon() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(
            f"{US1}/oauth2/token",
            status=201,
            json={"access_token": "tok-cli", "token_type": "bearer", "expires_in": 1799},
            headers={"X-Cs-Region": "us-1"},
        )
        mock.post(f"{US1}/oauth2/revoke", status=200, json={"errors": []})
        yield mock


def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdin=io.StringIO(stdin), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_token_prints_only_the_token(falcon: responses.RequestsMock) -> None:
    assert run("token") == (0, "tok-cli\n", "")


def test_token_json(falcon: responses.RequestsMock) -> None:
    import datetime

    code, out, _ = run("token", "--json")
    assert code == 0
    document = json.loads(out)
    expires_in, expires_at = document.pop("expires_in"), document.pop("expires_at")
    assert document == {
        "access_token": "tok-cli",
        "token_type": "bearer",
        "region": "us-1",
        "base_url": US1,
        "cached": False,
    }
    assert 1790 <= expires_in <= 1799  # seconds from now
    when = datetime.datetime.fromisoformat(expires_at.replace("Z", "+00:00"))
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((when - now).total_seconds() - expires_in) <= 5


def test_secret_from_stdin(falcon: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FALCON_CLIENT_SECRET")
    code, _, _ = run("token", "--client-id", "other", "--secret-stdin", stdin="piped-secret\n")
    assert code == 0
    form = form_of(falcon.calls[0].request.body)
    assert (form["client_id"], form["client_secret"]) == (["other"], ["piped-secret"])


def test_revoke_reads_the_token_from_stdin(falcon: responses.RequestsMock) -> None:
    assert run("revoke", "-", stdin="tok-old\n") == (0, "revoked\n", "")
    assert form_of(falcon.calls[0].request.body)["token"] == ["tok-old"]


def test_revoke_takes_the_token_as_argument(falcon: responses.RequestsMock) -> None:
    assert run("revoke", "tok-arg")[0] == 0
    assert form_of(falcon.calls[0].request.body)["token"] == ["tok-arg"]


def test_failure_is_one_line_without_the_secret(falcon: responses.RequestsMock) -> None:
    falcon.replace(
        responses.POST,
        f"{US1}/oauth2/token",
        status=403,
        json={"errors": [{"message": "Failed to issue access token - Not Authorized"}]},
    )
    code, out, err = run("token")
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("falcon-auth: Falcon refused the token request (403")
    assert SECRET not in err


def test_missing_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FALCON_CLIENT_SECRET")
    code, _, err = run("token")
    assert code == 1
    assert "FALCON_CLIENT_SECRET" in err


def test_no_secret_flag_exists() -> None:
    with pytest.raises(SystemExit) as caught:
        run("token", "--client-secret", "x")
    assert caught.value.code == 2


@pytest.mark.parametrize("argv", [[], ["nonsense"], ["token", "--cloud"]])
def test_usage_errors_exit_2(argv: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "requests_falcon_auth", *argv],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "usage: falcon-auth" in result.stderr


PLAIN = [
    ["token"],
    ["token", "--json"],
    ["token", "--base-url", "http://127.0.0.1:1", "--json", "--cache-dir", "/tmp/c"],
    ["token", "--base-url=http://127.0.0.1:1/?a=b", "--client-id=-starts-with-a-dash"],
    ["token", "--cloud", "us-2", "--member-cid", "child", "--client-id", "id"],
    ["token", "--cloud=", "--cache-dir="],
]
NOT_PLAIN = [
    [],
    ["revoke"],
    ["--version"],
    ["token", "-h"],
    ["token", "--base", "http://127.0.0.1:1"],  # argparse takes abbreviations; this does not
    ["token", "--json", "--json"],
    ["token", "--cloud", "us-1", "--cloud", "us-2"],
    ["token", "--cloud", "us-1", "--base-url", "http://127.0.0.1:1"],
    ["token", "--cloud"],
    ["token", "--cloud", "--json"],
    ["token", "--json=yes"],
    ["token", "--secret-stdin"],
    ["token", "--no-cache"],
    ["token", "--timeout", "5"],
    ["token", "extra"],
]


@pytest.mark.parametrize("argv", PLAIN)
def test_a_plain_token_command_line_is_read_as_argparse_reads_it(argv: list[str]) -> None:
    plain = _plain_token(argv)
    assert plain is not None
    assert vars(plain) == vars(_parser(argv).parse_args(argv))


@pytest.mark.parametrize("argv", NOT_PLAIN)
def test_any_other_command_line_is_left_to_argparse(argv: list[str]) -> None:
    assert _plain_token(argv) is None


@pytest.mark.parametrize("command", [[], ["token"], ["revoke"], ["emulator"], ["demo"]])
def test_help_everywhere(command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "requests_falcon_auth", *command, "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout.startswith("usage: falcon-auth")


def test_unknown_cloud_exits_1_with_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "requests_falcon_auth", "token", "--cloud", "mars"],
        capture_output=True,
        text=True,
        check=False,
        env={"FALCON_CLIENT_ID": "a", "FALCON_CLIENT_SECRET": "b", "PATH": ""},
    )
    assert result.returncode == 1
    assert result.stderr.startswith("falcon-auth: Unknown Falcon cloud 'mars'")
    assert "Traceback" not in result.stderr


def test_demo_narrates_each_step_with_counters() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "requests_falcon_auth", "demo"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "0 token requests so far" in out  # lazy
    assert "(1 x 308), 1 token issued in us-2" in out  # autodiscovery
    assert "10 API calls, still 1 token issued" in out  # reuse
    assert "renewed it ahead of expiry; tokens issued: 2" in out  # background renewal
    assert "200 after [401]" in out  # healed by one retry
    assert "the last one now gets 401" in out  # revoked on close
    assert result.stderr == ""


def read_until_ready(stream: IO[str] | None, limit: int = 40) -> list[str]:
    assert stream is not None
    lines = []
    for _ in range(limit):
        line = stream.readline()
        lines.append(line)
        if not line or line.startswith("ready"):
            break
    return lines


def test_emulator_command_serves_until_interrupted() -> None:
    import signal

    from requests_falcon_auth import FalconAuth

    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "requests_falcon_auth",
            "emulator",
            "--client",
            "cli-id:cli-pw:us-2",
            "--token-ttl",
            "60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = read_until_ready(process.stdout)
        assert lines[-1].startswith("ready"), lines
        clouds = dict(line.split()[:2] for line in lines if line.startswith(("us-", "eu-")))
        assert set(clouds) == {"us-1", "us-2", "eu-1", "us-gov-1"}
        assert any("FALCON_CLIENT_ID=cli-id FALCON_CLIENT_SECRET=cli-pw (us-2)" in x for x in lines)
        with FalconAuth("cli-id", "cli-pw", clouds=clouds) as auth:
            token = auth.get_token()
            assert (token.region, token.expires_in) == ("us-2", 60)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert out.strip().endswith("stopped")


@pytest.mark.parametrize("spec", ["justanid", "id:", "id:pw:mars", "id:pw:auto", "a:b:c:d"])
def test_emulator_rejects_bad_client_specs(spec: str) -> None:
    with pytest.raises(SystemExit) as caught:
        run("emulator", "--client", spec)
    assert caught.value.code == 2


def start_emulator(*flags: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "requests_falcon_auth", "emulator", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(process: subprocess.Popen[str], signum: int) -> tuple[str, str]:
    try:
        process.send_signal(signum)
        return process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_emulator_json_names_every_url_and_credential_and_member_cids_work() -> None:
    import signal

    import requests

    process = start_emulator("--json", "--client", "js-id:js-pw:eu-1:child-a,child-b")
    assert process.stdout is not None
    document = json.loads(process.stdout.readline())
    try:
        assert set(document) == {"regions", "ca_bundle", "admin", "clients"}
        assert document["clients"] == [
            {
                "client_id": "js-id",
                "client_secret": "js-pw",
                "region": "eu-1",
                "member_cids": ["child-a", "child-b"],
            }
        ]
        assert (document["ca_bundle"], document["admin"]) == (None, None)
        form = {"client_id": "js-id", "client_secret": "js-pw", "member_cid": "child-b"}
        answer = requests.post(f"{document['regions']['eu-1']}/oauth2/token", data=form)
        assert answer.status_code == 201
    finally:
        out, err = stop(process, signal.SIGINT)
    assert process.returncode == 0, err
    assert out == ""  # stdout is the one JSON object, nothing after it


@pytest.mark.parametrize("flags", [[], ["--no-samples"]])
def test_emulator_serves_the_sample_tenant_unless_told_not_to(flags: list[str]) -> None:
    """A real client against ``falcon-auth emulator`` finds a tenant whose writes hold: a host
    contained stays contained; with ``--no-samples`` only the hosts, and Falcon's empty pages."""
    import signal

    process = start_emulator("--json", "--client", "cli-id:cli-pw", *flags)
    assert process.stdout is not None
    document = json.loads(process.stdout.readline())
    try:
        with FalconSession(
            FalconAuth("cli-id", "cli-pw", base_url=document["regions"]["us-1"])
        ) as session:
            host = session.get("/devices/queries/devices/v1", params={"limit": 1}).json()
            device_id = host["resources"][0]
            contain = session.post(
                "/devices/entities/devices-actions/v2",
                params={"action_name": "contain"},
                json={"ids": [device_id]},
            )
            assert contain.status_code == 202
            session.get("/devices/entities/devices/v2", params={"ids": device_id})
            details = session.get("/devices/entities/devices/v2", params={"ids": device_id})
            status = details.json()["resources"][0]["status"]
            groups = session.get("/devices/queries/host-groups/v1").json()
    finally:
        stop(process, signal.SIGINT)
    assert process.returncode == 0
    if flags:
        assert (status, groups["meta"]["pagination"]["total"]) == ("normal", 0)
    else:
        assert status == "contained"
        assert groups["meta"]["pagination"]["total"] > 0


def test_sigterm_cleans_up_like_ctrl_c() -> None:
    """TERM (what a supervisor or a test harness sends) stops the servers and deletes the CA."""
    import os
    import signal

    process = start_emulator("--tls", "--json")
    assert process.stdout is not None
    ca_bundle = json.loads(process.stdout.readline())["ca_bundle"]
    assert os.path.exists(ca_bundle)
    _, err = stop(process, signal.SIGTERM)
    assert (process.returncode, err) == (0, "")
    assert not os.path.exists(ca_bundle)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--token-ttl", "0"], "--token-ttl must be a whole number from 1 to 86400, got '0'"),
        (["--token-ttl", "soon"], "--token-ttl must be a whole number from 1 to 86400"),
        (["--port", "70000"], "--port must be a whole number from 0 to 65535"),
        (["--port", "65534"], "--port 65534 leaves no room for 4 regions"),
        (["--admin-port", "-1"], "--admin-port must be a whole number from 0 to 65535"),
    ],
)
def test_emulator_bad_input_is_one_line_and_exit_1(flags: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "requests_falcon_auth", "emulator", *flags],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.startswith(f"falcon-auth: {message}")
    assert result.stderr.count("\n") == 1
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--port", "Could not listen on ports {port}-"),
        ("--admin-port", "Could not listen on admin port {port}: "),
    ],
)
def test_emulator_port_in_use_is_one_line_and_exit_1(flag: str, message: str) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "requests_falcon_auth", "emulator", flag, str(port)],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    assert result.returncode == 1
    assert result.stderr.startswith("falcon-auth: " + message.format(port=port))
    assert result.stderr.count("\n") == 1


def test_emulator_tls_without_trustme_is_one_line_and_exit_1() -> None:
    script = (
        "import sys; sys.modules['trustme'] = None\n"
        "from requests_falcon_auth.cli import main\n"
        "sys.exit(main(['emulator', '--tls']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 1
    assert result.stderr == (
        "falcon-auth: --tls needs trustme: pip install 'requests-falcon-auth[testing]'.\n"
    )


def test_emulator_admin_port_serves_the_admin_api_to_a_plain_http_client() -> None:
    import signal

    process = start_emulator("--json", "--admin-port", "0", "--client", "a-id:a-pw")
    assert process.stdout is not None
    document = json.loads(process.stdout.readline())
    try:
        admin = document["admin"]
        assert admin.startswith("http://127.0.0.1:")
        added = subprocess.run(
            [
                "curl",
                "-sS",
                "-d",
                '{"client_id": "b-id", "client_secret": "b-pw"}',
                f"{admin}/clients",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert json.loads(added.stdout)["client_id"] == "b-id"
        overview = subprocess.run(
            ["curl", "-sS", f"{admin}/"], capture_output=True, text=True, check=True
        )
        listed = json.loads(overview.stdout)
        assert [c["client_id"] for c in listed["clients"]] == ["a-id", "b-id"]
        assert listed["regions"] == document["regions"]
    finally:
        _, err = stop(process, signal.SIGTERM)
    assert (process.returncode, err) == (0, "")


class Terminal(io.StringIO):
    """A stdin that says it is a terminal and must not be read line by line for the secret."""

    def isatty(self) -> bool:
        return True

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        raise AssertionError("the secret was read with echo")


def test_secret_stdin_at_a_terminal_is_read_without_echo(
    falcon: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FALCON_CLIENT_SECRET")
    prompts: list[str] = []

    def typed(prompt: str = "Password: ") -> str:
        prompts.append(prompt)
        return "typed-secret"

    monkeypatch.setattr("getpass.getpass", typed)
    out, err = io.StringIO(), io.StringIO()
    code = main(["token", "--secret-stdin"], stdin=Terminal(), stdout=out, stderr=err)
    assert (code, out.getvalue(), err.getvalue()) == (0, "tok-cli\n", "")
    assert prompts == ["Falcon client secret: "]
    assert form_of(falcon.calls[0].request.body)["client_secret"] == ["typed-secret"]


def test_secret_stdin_from_a_pipe_is_read_as_a_line(
    falcon: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FALCON_CLIENT_SECRET")

    def no_terminal(prompt: str = "") -> str:
        raise AssertionError("getpass on a pipe")

    monkeypatch.setattr("getpass.getpass", no_terminal)
    assert run("token", "--secret-stdin", stdin="piped-secret\nrest\n") == (0, "tok-cli\n", "")
    assert form_of(falcon.calls[0].request.body)["client_secret"] == ["piped-secret"]


def test_an_unreachable_endpoint_is_one_line_on_stderr_and_nothing_on_stdout() -> None:
    """Retries are logged at INFO: a new user sees the one error, not a warning per try first."""
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        result = subprocess.run(
            [sys.executable, "-m", "requests_falcon_auth", "token", "--base-url", url],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            env={"FALCON_CLIENT_ID": "a", "FALCON_CLIENT_SECRET": SECRET, "PATH": ""},
        )
    assert (result.returncode, result.stdout) == (1, "")  # set -o pipefail sees the failure only
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("falcon-auth: Could not reach the Falcon token request")
    assert f"{url.removeprefix('http://')} refused the connection" in result.stderr


def test_revoke_refused_with_403_names_the_client_id_and_secret() -> None:
    from requests_falcon_auth.testing import FalconEmulator

    with FalconEmulator() as emu:
        emu.add_client("cli-client", "the-real-secret-value")  # the environment's SECRET differs
        code, out, err = run("revoke", "--base-url", emu.base_url("us-1"), "tok-any")
        assert emu.counters.revokes == 0
    assert (code, out) == (1, "")
    assert err.startswith("falcon-auth: Falcon refused the token revocation (403")
    assert "Check the client id and secret (FALCON_CLIENT_ID, FALCON_CLIENT_SECRET)" in err
    assert err.count("\n") == 1


def falcon_auth_cli(
    emu: object, *argv: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``falcon-auth ARGV --base-url <the emulator's us-1>`` in a new process."""
    base_url = emu.base_url("us-1")  # type: ignore[attr-defined]
    return subprocess.run(
        [sys.executable, "-m", "requests_falcon_auth", *argv, "--base-url", base_url],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@pytest.fixture
def emulated(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    from requests_falcon_auth.testing import FalconEmulator

    with FalconEmulator(regions=("us-1",)) as emu:
        emu.add_client("cli-client", SECRET)
        yield emu


def test_twenty_token_runs_make_one_token_request(emulated: object, own_cache_dir: Path) -> None:
    runs = [falcon_auth_cli(emulated, "token") for _ in range(20)]
    assert [(r.returncode, r.stderr) for r in runs] == [(0, "")] * 20
    assert len({r.stdout for r in runs}) == 1
    assert emulated.counters.token_requests == 1  # type: ignore[attr-defined]
    entries = list(own_cache_dir.iterdir())
    assert entries  # the cache is where the user's cache directory says
    token = runs[0].stdout.strip()
    for entry in entries:  # never on disk in clear
        assert token.encode() not in entry.read_bytes()


def test_no_cache_fetches_every_time_and_json_says_where_the_token_came_from(
    emulated: object,
) -> None:
    first = json.loads(falcon_auth_cli(emulated, "token", "--json").stdout)
    second = json.loads(falcon_auth_cli(emulated, "token", "--json").stdout)
    assert (first["cached"], second["cached"]) == (False, True)
    assert first["access_token"] == second["access_token"]
    uncached = [falcon_auth_cli(emulated, "token", "--no-cache") for _ in range(3)]
    assert len({r.stdout for r in uncached} | {first["access_token"] + "\n"}) == 4
    assert emulated.counters.token_requests == 4  # type: ignore[attr-defined]


def test_revoke_evicts_what_it_revokes(emulated: object) -> None:
    token = falcon_auth_cli(emulated, "token").stdout.strip()
    revoked = falcon_auth_cli(emulated, "revoke", "-", stdin=token + "\n")
    assert (revoked.returncode, revoked.stdout) == (0, "revoked\n")
    fresh = falcon_auth_cli(emulated, "token").stdout.strip()
    assert fresh != token  # the revoked token was not served from the cache
    counters = emulated.counters  # type: ignore[attr-defined]
    assert (counters.token_requests, counters.revokes) == (2, 1)


def test_cache_dir_flag_and_an_unsafe_cache_dir(emulated: object, tmp_path: Path) -> None:
    chosen = tmp_path / "chosen"
    assert falcon_auth_cli(emulated, "token", "--cache-dir", str(chosen)).returncode == 0
    assert oct(chosen.stat().st_mode & 0o777) == "0o700"
    unsafe = tmp_path / "shared"
    unsafe.mkdir(mode=0o777)
    unsafe.chmod(0o777)
    refused = falcon_auth_cli(emulated, "token", "--cache-dir", str(unsafe))
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert refused.stderr.startswith("falcon-auth: ")
    assert refused.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("header", "said"),
    [
        ("1800000121", "wait 120 s"),  # 120 s sent as the epoch second after them, at .4
        ("1800000001", "wait 1 s"),  # less than a second left: still a wait, never "0 s"
        ("120", "wait 120 s"),  # a delay, as a proxy's Retry-After-style value
    ],
)
def test_a_429_says_the_wait_falcon_sent(
    falcon: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch, header: str, said: str
) -> None:
    """X-Ratelimit-Retryafter names an epoch second, rounded up by the gateway: a wait of
    120 s sent at x.4 s is 120.6 s away, which is still "wait 120 s", never 121."""
    import time

    monkeypatch.setattr(time, "time", lambda: 1_800_000_000.4)
    falcon.replace(
        responses.POST,
        f"{US1}/oauth2/token",
        status=429,
        json={"errors": [{"message": "API rate limit exceeded."}]},
        headers={"X-Ratelimit-Retryafter": header},
    )
    code, out, err = run("token", "--no-cache")
    assert (code, out) == (1, "")
    assert f"Too many calls from this address: {said} before asking again" in err
