"""``falcon-auth`` as a shell runs it: a new process each time, real pipes, terminals and signals.

A cached token served without the HTTP stack, closed pipes and Ctrl-C, errors that name flags,
``--timeout`` and the notice at a terminal, and the prompts at a terminal.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

import pytest
import responses

from requests_falcon_auth import FalconAuth
from requests_falcon_auth.filecache import FileTokenCache
from requests_falcon_auth.testing import FalconEmulator

SECRET = "shell-secret-value-17"
WAIT = 60.0
# The HTTP stack a cached token must not need (and its dependencies), matched against whole
# module names. (email is not one of them: cryptography 41 imports email.utils itself.)
HEAVY = ("requests", "urllib3", "http.client", "ssl", "idna", "charset_normalizer", "certifi")
# What else a cached token's run has no use for, each import costing it more than reading the
# token: the parser (a plain command line is read without it), logging (nothing is logged),
# platformdirs (Linux's cache directory is read from the environment).
UNNEEDED = ("argparse", "logging", "platformdirs")


def falcon_auth() -> list[str]:
    """The console script beside this interpreter, as a user runs it (``-m`` without one)."""
    script = shutil.which("falcon-auth", path=os.path.dirname(sys.executable))
    return [script] if script else [sys.executable, "-m", "requests_falcon_auth"]


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """An environment of the user's: credentials, and a cache directory of this test's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FALCON_")}
    env.update(
        FALCON_CLIENT_ID="shell-client",
        FALCON_CLIENT_SECRET=SECRET,
        XDG_CACHE_HOME=str(tmp_path / "xdg-cache"),
    )
    return env


@pytest.fixture
def emu() -> Iterator[FalconEmulator]:
    with FalconEmulator(regions=("us-1", "us-2")) as emulator:
        emulator.add_client("shell-client", SECRET)
        yield emulator


def shell(
    argv: Sequence[str], env: dict[str, str], *, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*falcon_auth(), *argv],
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=WAIT,
    )


def imported(stderr: str) -> set[str]:
    """The modules a run imported, from ``PYTHONPROFILEIMPORTTIME`` (``-X importtime``)."""
    return {
        line.rsplit("|", 1)[1].strip()
        for line in stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    } - {"imported package"}


def heavy(modules: set[str], names: Sequence[str] = HEAVY) -> set[str]:
    return {m for m in modules if any(m == h or m.startswith(h + ".") for h in names)}


# -- 1. a cached token without the HTTP stack ---------------------------------------------------


@pytest.mark.parametrize("flags", [[], ["--json"]])
def test_a_cached_token_is_printed_without_importing_the_http_stack(
    emu: FalconEmulator, home: dict[str, str], flags: list[str]
) -> None:
    where = ["--base-url", emu.base_url("us-1")]
    first = shell(["token", *where], home)
    assert (first.returncode, first.stderr) == (0, "")
    traced = shell(["token", *where, *flags], {**home, "PYTHONPROFILEIMPORTTIME": "1"})
    assert traced.returncode == 0, traced.stderr
    modules = imported(traced.stderr)
    assert "requests_falcon_auth.filecache" in modules  # the trace is of the cached path
    assert heavy(modules) == set()
    if sys.platform == "linux":
        assert heavy(modules, UNNEEDED) == set()
    if flags:
        document = json.loads(traced.stdout)
        assert (document["access_token"], document["cached"]) == (first.stdout.strip(), True)
        assert document["base_url"] == emu.base_url("us-1")
    else:
        assert traced.stdout == first.stdout
    assert emu.counters.token_requests == 1  # the second run asked nobody


def test_without_a_fresh_token_the_http_stack_is_imported_and_a_token_fetched(
    emu: FalconEmulator, home: dict[str, str]
) -> None:
    """The checks above can fail: the uncached path does import requests, and a command line
    that is not plain (an abbreviated flag) is read by argparse."""
    traced = shell(
        ["token", "--base", emu.base_url("us-1")], {**home, "PYTHONPROFILEIMPORTTIME": "1"}
    )
    assert traced.returncode == 0
    modules = imported(traced.stderr)
    assert {"requests", "urllib3"} <= heavy(modules)
    assert "argparse" in modules
    assert emu.counters.token_requests == 1


def prime(cache_dir: Path, cloud: str, member_cid: str | None = None) -> str:
    """Puts a token for ``cloud`` in the cache as FalconAuth does, from a mocked Falcon."""
    region = "us-1" if cloud == "auto" else cloud
    host = "api.crowdstrike.com" if region == "us-1" else f"api.{region}.crowdstrike.com"
    with responses.RequestsMock() as falcon:
        falcon.post(
            f"https://{host}/oauth2/token",
            status=201,
            json={"access_token": f"tok-{region}", "token_type": "bearer", "expires_in": 1799},
            headers={"X-Cs-Region": region},
        )
        cache = FileTokenCache(cache_dir)
        with FalconAuth(
            "shell-client", SECRET, cloud=cloud, member_cid=member_cid, cache=cache
        ) as auth:
            return auth.get_token().access_token


@pytest.mark.parametrize(
    ("cloud", "member_cid", "flags", "env"),
    [
        ("us-2", None, ["--cloud", "US2"], {}),
        ("us-2", None, [], {"FALCON_CLOUD": "us-2"}),
        ("auto", None, [], {}),
        ("auto", "child-cid", ["--member-cid", "child-cid"], {}),
        ("auto", "child-cid", [], {"FALCON_MEMBER_CID": "child-cid"}),
    ],
)
def test_a_named_cloud_finds_the_token_falcon_auth_cached(
    tmp_path: Path,
    home: dict[str, str],
    cloud: str,
    member_cid: str | None,
    flags: list[str],
    env: dict[str, str],
) -> None:
    """The fast path keys the cache as FalconAuth does; a miss would go to CrowdStrike's real
    hosts with made-up credentials and fail."""
    cache_dir = tmp_path / "cache"
    token = prime(cache_dir, cloud, member_cid)
    traced = shell(
        ["token", "--cache-dir", str(cache_dir), *flags],
        {**home, **env, "PYTHONPROFILEIMPORTTIME": "1"},
    )
    assert (traced.returncode, traced.stdout) == (0, token + "\n"), traced.stderr[-500:]
    assert heavy(imported(traced.stderr)) == set()


# -- 2. closed pipes and Ctrl-C ------------------------------------------------------------------


def closed_pipe_run(argv: Sequence[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Runs with stdout a pipe nobody reads any more (``| true`` once ``true`` has exited)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [*falcon_auth(), *argv],
            stdout=write_end,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
            check=False,
            timeout=WAIT,
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize("cached", [False, True])
def test_token_into_a_closed_pipe_exits_141_quietly(
    emu: FalconEmulator, home: dict[str, str], cached: bool
) -> None:
    where = ["--base-url", emu.base_url("us-1")]
    if cached:
        assert shell(["token", *where], home).returncode == 0
    result = closed_pipe_run(["token", *where], home)
    assert (result.returncode, result.stderr) == (141, "")


def test_emulator_into_a_closed_pipe_stops_and_exits_141_quietly(home: dict[str, str]) -> None:
    result = closed_pipe_run(["emulator", "--json"], home)
    assert (result.returncode, result.stderr) == (141, "")


def read_line_within(stream: IO[str] | None, timeout: float = WAIT) -> str:
    assert stream is not None
    ready, _, _ = select.select([stream], [], [], timeout)
    assert ready, "nothing came"
    return stream.readline()


def test_ctrl_c_during_an_import_exits_130_without_a_traceback(
    tmp_path: Path, home: dict[str, str]
) -> None:
    """Ctrl-C while the emulator's TLS dependency is being imported: a stand-in trustme says
    it is being imported, then waits there, so the signal lands inside the import."""
    (tmp_path / "trustme.py").write_text(
        "import signal, sys\n"
        "sys.stderr.write('importing trustme\\n')\n"
        "sys.stderr.flush()\n"
        "signal.pause()\n"
    )
    with started(["emulator", "--tls"], {**home, "PYTHONPATH": str(tmp_path)}) as process:
        assert read_line_within(process.stderr) == "importing trustme\n"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=WAIT)
    assert (process.returncode, out, err) == (130, "", "falcon-auth: interrupted\n")


@contextlib.contextmanager
def started(argv: Sequence[str], env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """``falcon-auth ARGV`` running with text pipes; killed on the way out if it still runs."""
    process = subprocess.Popen(
        [*falcon_auth(), *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


@contextlib.contextmanager
def silent_server() -> Iterator[socket.socket]:
    """A server that accepts connections and never answers."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(WAIT)
        yield server


def test_ctrl_c_while_waiting_for_falcon_exits_130_without_a_traceback(
    home: dict[str, str],
) -> None:
    with silent_server() as server:
        url = f"http://127.0.0.1:{server.getsockname()[1]}"
        with started(["token", "--no-cache", "--base-url", url], home) as process:
            connection, _ = server.accept()  # the token request is on its way
            with connection:
                process.send_signal(signal.SIGINT)
                out, err = process.communicate(timeout=WAIT)
    assert (process.returncode, out, err) == (130, "", "falcon-auth: interrupted\n")


# -- 3 and 5. errors in the command line's words ---------------------------------------------------


def one_line_error(result: subprocess.CompletedProcess[str], code: int = 1) -> str:
    assert (result.returncode, result.stdout) == (code, ""), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def test_a_client_of_another_region_behind_base_url_is_told_which_flags_to_use(
    emu: FalconEmulator, home: dict[str, str]
) -> None:
    emu.add_client("us2-client", "us2-secret", region="us-2")
    env = {**home, "FALCON_CLIENT_ID": "us2-client", "FALCON_CLIENT_SECRET": "us2-secret"}
    err = one_line_error(shell(["token", "--base-url", emu.base_url("us-1")], env))
    assert "belong to Falcon cloud us-2" in err
    assert "Give --base-url the URL of region us-2, or use --cloud us-2" in err
    assert "cloud='" not in err


def test_an_unusable_cache_dir_is_told_as_the_flag(tmp_path: Path, home: dict[str, str]) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    err = one_line_error(shell(["token", "--cache-dir", str(shared)], home))
    assert "is open to other users" in err
    assert "give --cache-dir a private directory" in err
    assert "FileTokenCache(" not in err


def test_an_empty_secret_on_stdin_says_so(home: dict[str, str]) -> None:
    del home["FALCON_CLIENT_SECRET"]
    err = one_line_error(
        shell(["token", "--client-id", "someone", "--secret-stdin"], home, stdin="")
    )
    assert err.startswith("falcon-auth: --secret-stdin read no client secret")
    assert "give --client-id and --secret-stdin" not in err


def test_a_client_region_that_is_no_region_lists_only_regions(home: dict[str, str]) -> None:
    result = shell(["emulator", "--client", "a:b:mars"], home)
    assert result.returncode == 2  # a usage error: argparse's usage line, then the error
    error = result.stderr.splitlines()[-1]
    assert error.endswith(
        "unknown region 'mars' in 'a:b:mars': a client lives in one of us-1, us-2, eu-1, "
        "us-gov-1, us-gov-2, us-3"
    )
    assert "auto" not in result.stderr


def test_an_emulator_client_id_given_twice_is_refused_in_one_line(home: dict[str, str]) -> None:
    err = one_line_error(shell(["emulator", "--client", "dup:a", "--client", "dup:b"], home))
    assert err.startswith("falcon-auth: --client dup is given more than once")


# -- 4. --timeout, and the notice at a terminal ------------------------------------------------


def test_timeout_bounds_a_stalled_endpoint_and_the_error_names_the_flag(
    home: dict[str, str],
) -> None:
    with silent_server() as server:
        url = f"http://127.0.0.1:{server.getsockname()[1]}"
        err = one_line_error(
            shell(["token", "--no-cache", "--timeout", "0.5", "--base-url", url], home)
        )
    assert "sent no complete answer within 0.5 s" in err
    assert err.rstrip().endswith("or raise --timeout.")
    assert "waiting for Falcon" not in err  # not a terminal: nothing but the error


@pytest.mark.parametrize("value", ["0", "-1", "soon", "nan", "inf"])
def test_timeout_takes_seconds_above_zero(home: dict[str, str], value: str) -> None:
    err = shell(["token", "--timeout", value], home).stderr
    assert f"--timeout: expected seconds above 0 (e.g. 5 or 2.5), got {value!r}" in err


def read_terminal(master: int, until: bytes, timeout: float = WAIT) -> bytes:
    """What the program writes to the terminal, until ``until`` or end of file."""
    seen = b""
    while until not in seen:
        ready, _, _ = select.select([master], [], [], timeout)
        assert ready, f"the terminal showed only {seen!r}"
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the other end is closed
            break
        if not chunk:
            break
        seen += chunk
    return seen


def test_a_terminal_is_told_once_that_the_call_is_waiting_for_falcon(
    home: dict[str, str],
) -> None:
    """Three tries of 2 s each take 6 s at least: the notice comes after 3 s, once."""
    master, terminal = os.openpty()
    with silent_server() as server:
        url = f"http://127.0.0.1:{server.getsockname()[1]}"
        process = subprocess.Popen(
            [*falcon_auth(), "token", "--no-cache", "--timeout", "2", "--base-url", url],
            stdout=subprocess.PIPE,
            stderr=terminal,
            env=home,
        )
        os.close(terminal)
        try:
            shown = read_terminal(master, b"falcon-auth: Could not reach")
            shown += read_terminal(master, b"\n" * 99)  # the rest, to the end
            process.communicate(timeout=WAIT)
        finally:
            os.close(master)
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert process.returncode == 1
    text = shown.decode().replace("\r\n", "\n")
    notice = (
        f"falcon-auth: waiting for Falcon at {url} ... (--timeout bounds each try; Ctrl-C stops)\n"
    )
    assert text.count("waiting for Falcon") == 1
    assert text.startswith(notice), text
    assert text[len(notice) :].startswith("falcon-auth: Could not reach the Falcon token request")


# -- 6. revoke at a terminal -----------------------------------------------------------------------


def on_terminal(argv: Sequence[str], env: dict[str, str], terminal: int) -> subprocess.Popen[bytes]:
    """Starts ``falcon-auth ARGV`` in a session of its own whose controlling terminal is
    ``terminal`` (as a shell gives it one), with stdin on it; stdout and stderr are pipes."""
    become_terminal_owner = (
        "import fcntl, os, sys, termios\n"
        "fcntl.ioctl(0, termios.TIOCSCTTY, 0)\n"
        "os.execv(sys.argv[1], sys.argv[1:])\n"
    )
    command = falcon_auth()
    if len(command) == 1:
        command = [sys.executable, command[0]]
    return subprocess.Popen(
        [sys.executable, "-c", become_terminal_owner, *command, *argv],
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )


def test_revoke_at_a_terminal_asks_for_the_token_without_echo(
    emu: FalconEmulator, home: dict[str, str]
) -> None:
    where = ["--base-url", emu.base_url("us-1")]
    token = shell(["token", *where], home).stdout.strip()
    master, terminal = os.openpty()
    process = on_terminal(["revoke", *where], home, terminal)
    os.close(terminal)
    try:
        prompt = read_terminal(master, b"Falcon access token to revoke: ")
        assert prompt.endswith(b"Falcon access token to revoke: ")
        os.write(master, token.encode() + b"\n")
        out, err = process.communicate(timeout=WAIT)
        echoed = read_terminal(master, b"\n")
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert (process.returncode, out, err) == (0, b"revoked\n", b""), err
    assert token.encode() not in echoed  # typed without echo
    assert emu.counters.revokes == 1


# -- 8. the command line against the emulator, as docs/cli.rst shows it ------------------------


@pytest.mark.parametrize("tls", [False, True])
def test_the_cli_against_the_emulator_as_the_docs_show(home: dict[str, str], tls: bool) -> None:
    """``falcon-auth emulator --json`` in one process, ``falcon-auth token`` in another with
    its credentials, ``--base-url`` and (``--tls``) ``REQUESTS_CA_BUNDLE``."""
    process = subprocess.Popen(
        [*falcon_auth(), "emulator", "--json", *(["--tls"] if tls else [])],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=home,
        text=True,
    )
    try:
        document = json.loads(read_line_within(process.stdout))
        client = document["clients"][0]
        env = {
            **home,
            "FALCON_CLIENT_ID": client["client_id"],
            "FALCON_CLIENT_SECRET": client["client_secret"],
        }
        if tls:
            env["REQUESTS_CA_BUNDLE"] = document["ca_bundle"]
        where = ["--base-url", document["regions"][client["region"]]]
        fetched = shell(["token", "--json", *where], env)
        cached = shell(["token", "--json", *where], env)
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=WAIT)
    assert (fetched.returncode, fetched.stderr) == (0, "")
    first, second = json.loads(fetched.stdout), json.loads(cached.stdout)
    assert (first["cached"], second["cached"]) == (False, True)
    assert first["access_token"] == second["access_token"]
    assert first["base_url"].startswith("https://" if tls else "http://")
