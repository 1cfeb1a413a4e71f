"""The ``falcon-auth`` console script: token, revoke, emulator, demo.

Exit codes: 0 success, 1 failure (one line on stderr, no traceback), 2 usage errors (argparse).
Secrets never come from a flag value, where ``ps`` and shell history would show them: the
client secret comes from ``FALCON_CLIENT_SECRET`` or, with ``--secret-stdin``, from stdin (typed
without echo when stdin is a terminal). ``token`` and ``revoke`` write to stdout only on
success, so ``set -o pipefail`` pipelines never get half an answer. A closed stdout (``falcon-auth
token | true``) ends the run with 141 and a Ctrl-C with 130, as shells expect, without a
traceback. Errors name flags and environment variables, not the library's Python arguments.

``token`` with a fresh token in the host's token cache prints it without importing requests
(``_cached_token``): the HTTP stack is imported only when a call must be made, which is most of
what a run that fetches spends before it sends anything.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING, Final, NamedTuple, TextIO

# Only what every command needs: the HTTP stack (requests, urllib3) is imported by the commands
# that make calls, when they make them.
from .__version__ import __version__
from ._environment import from_env, resolve_credentials
from ._regions import DEFAULT_CLOUDS, normalize
from .errors import ConfigurationError, FalconAuthError

if TYPE_CHECKING:
    import argparse
    from typing import Union

    from .auth import FalconAuth
    from .filecache import FileTokenCache
    from .testing import FalconEmulator

    # What a command reads its flags from: argparse's namespace, or _plain_token's reading.
    Arguments = Union[argparse.Namespace, SimpleNamespace]

__all__ = ["main"]

# How long a call to Falcon runs before a terminal is told it is waiting.
_NOTICE_AFTER: Final = 3.0
# Exit codes a shell gives a command killed by SIGPIPE or SIGINT (128 + the signal's number).
_EXIT_BROKEN_PIPE: Final = 141
_EXIT_INTERRUPTED: Final = 130


def _add_credentials(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("credentials (default: the FALCON_* environment variables)")
    group.add_argument("--client-id", help="API client id (default: $FALCON_CLIENT_ID)")
    group.add_argument(
        "--secret-stdin",
        action="store_true",
        help="read the client secret from the first line of stdin, or ask for it without echo "
        "at a terminal (default: $FALCON_CLIENT_SECRET)",
    )
    group.add_argument("--member-cid", help="MSSP child CID (default: $FALCON_MEMBER_CID)")
    where = group.add_mutually_exclusive_group()
    where.add_argument("--cloud", help="us-1, us-2, eu-1, us-gov-1, us-gov-2, us-3 or auto")
    where.add_argument("--base-url", help="custom API base URL (a gateway); no autodiscovery")
    parser.add_argument(
        "--timeout",
        type=_timeout,
        metavar="SECONDS",
        help="seconds each connect and each read of a call to Falcon may take; a call tries "
        "up to 3 times (default: 10 to connect, 30 to read)",
    )
    cache = parser.add_argument_group("token cache (one token for every run on this host)")
    cache.add_argument(
        "--no-cache", action="store_true", help="neither read nor write the token cache"
    )
    cache.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="the cache directory (default: the user's cache directory; created 0700)",
    )


def _parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    import argparse  # not for a cached token (_plain_token): building the parser costs more

    parser = argparse.ArgumentParser(
        prog="falcon-auth",
        description="CrowdStrike Falcon OAuth2 tokens from the command line, and a local emulator.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # Only the command named gets its arguments (the first word that is not an option: the
    # top level has options only): building them all is a tenth of a cached token's run, and
    # the top-level help lists the commands by name alone.
    named = next((arg for arg in argv if not arg.startswith("-")), None)
    for name, (summary, description, arguments) in _COMMAND_HELP.items():
        command = commands.add_parser(name, help=summary, description=description)
        if name == named:
            arguments(command)
    return parser


# The flags of a plain ``token`` run (what a shell loop's ``$(falcon-auth token ...)`` gives),
# and argparse's defaults for every flag ``token`` takes.
_PLAIN_TOKEN_VALUES: Final = frozenset(
    {"--client-id", "--member-cid", "--cloud", "--base-url", "--cache-dir"}
)
_TOKEN_DEFAULTS: Final = {
    "client_id": None,
    "secret_stdin": False,
    "member_cid": None,
    "cloud": None,
    "base_url": None,
    "timeout": None,
    "no_cache": False,
    "cache_dir": None,
    "json": False,
}


def _plain_token(argv: Sequence[str]) -> SimpleNamespace | None:
    """A plain ``token`` command line read as argparse reads it, without building the parser,
    which costs a cached token's run more than reading the token does; None for anything
    else (another command, any other flag, an abbreviation, a repeat, ``-h``), which
    argparse reads and, if need be, refuses.

    Plain: ``token`` then ``--json`` and the flags of ``_PLAIN_TOKEN_VALUES`` spelt in full,
    each at most once, with their values (``--flag value`` or ``--flag=value``).
    """
    if not argv or argv[0] != "token":
        return None
    given: dict[str, object] = {}
    words = iter(argv[1:])
    for word in words:
        flag, equals, value = word.partition("=")
        setting: object
        if flag == "--json" and not equals:
            setting = True
        elif flag in _PLAIN_TOKEN_VALUES:
            if not equals:
                value = next(words, "-")
                if value.startswith("-"):  # a flag, or nothing: argparse says what is missing
                    return None
            setting = value
        else:
            return None
        name = flag[2:].replace("-", "_")
        if name in given:
            return None
        given[name] = setting
    if "cloud" in given and "base_url" in given:  # argparse refuses the pair
        return None
    return SimpleNamespace(command="token", **{**_TOKEN_DEFAULTS, **given})


def _token_arguments(token: argparse.ArgumentParser) -> None:
    _add_credentials(token)
    token.add_argument(
        "--json",
        action="store_true",
        help="print JSON: the token, its expiry (seconds from now and ISO time), its region, "
        "and whether it came from the cache",
    )


def _revoke_arguments(revoke: argparse.ArgumentParser) -> None:
    _add_credentials(revoke)
    revoke.add_argument(
        "token",
        nargs="?",
        default="-",
        help="the token, or - for stdin (typed without echo at a terminal)",
    )


def _emulator_arguments(emulator: argparse.ArgumentParser) -> None:
    emulator.add_argument(
        "--port",
        default="0",
        metavar="PORT",
        help="port of the first region; the others take the next ports (default: ephemeral)",
    )
    emulator.add_argument("--tls", action="store_true", help="serve https with a minted CA")
    emulator.add_argument(
        "--client",
        type=_client_spec,
        action="append",
        default=[],
        metavar="ID:SECRET[:REGION[:MEMBER_CID,...]]",
        help="register an API client (repeatable, one per client id; default: one random "
        "client in us-1)",
    )
    emulator.add_argument(
        "--token-ttl", default="1799", metavar="SECONDS", help="lifetime of tokens (1-86400)"
    )
    emulator.add_argument(
        "--admin-port",
        metavar="PORT",
        help="serve the admin API (clients, data, faults, counters, request log) on this "
        "loopback port; 0 picks one (default: off)",
    )
    emulator.add_argument(
        "--no-region-header",
        action="store_true",
        help="leave X-Cs-Region out of token answers, so that SDKs that move to the region it "
        "names (falconpy, falconjs) stay on the emulator",
    )
    emulator.add_argument(
        "--no-samples",
        action="store_true",
        help="serve only the sample hosts, without the rest of the sample tenant (host groups, "
        "prevention policies, users, alerts, incidents, host histories) and its writes "
        "(containment, tags, groups...): Falcon's empty answers everywhere else",
    )
    emulator.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object with every URL and credential instead of text lines",
    )


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    """The demo takes none."""


# Each command: its line in the top-level help, its description, and what adds its arguments.
_COMMAND_HELP: Final[dict[str, tuple[str, str, Callable[[argparse.ArgumentParser], None]]]] = {
    "token": (
        "print a fresh access token",
        "Print a fresh access token, e.g. "
        'curl -H "Authorization: Bearer $(falcon-auth token)" ... The token is cached, '
        "encrypted under a key derived from the client secret, and reused by later runs while "
        "it is fresh: a shell loop or a cron job makes one token request per token lifetime.",
        _token_arguments,
    ),
    "revoke": (
        "revoke a token",
        "Revoke a token. Give '-' (or nothing) to read it from stdin, which keeps it "
        "out of the process list. A revoked token is evicted from the token cache.",
        _revoke_arguments,
    ),
    "emulator": (
        "run the Falcon emulator in the foreground",
        "Serve an emulated Falcon OAuth2 service and API gateway on loopback until "
        "Ctrl-C, with a sample tenant whose writes change what later reads show. Each region "
        "listens on its own port.",
        _emulator_arguments,
    ),
    "demo": (
        "narrate FalconAuth against an embedded emulator (no credentials, no network)",
        "Start the emulator and walk through lazy fetch, reuse, renewal, a 401 "
        "healed by one retry, and revoke on close, with the emulator's counters as proof.",
        _no_arguments,
    ),
}


class _Given(NamedTuple):
    """The settings of one run: flags first, then the ``FALCON_*`` environment, as FalconAuth
    resolves them (resolved once, so the secret is read from stdin once)."""

    client_id: str
    secret: str
    member_cid: str | None
    cloud: str | None
    base_url: str | None


def _given(args: Arguments, stdin: TextIO) -> _Given:
    """The run's credentials and cloud.

    Raises:
        ConfigurationError: a credential is missing, or ``--secret-stdin`` read none.
    """
    secret = None
    if args.secret_stdin:
        secret = _read_secret(stdin)
        if not secret:
            where = "was typed" if stdin.isatty() else "came on the first line of stdin"
            raise ConfigurationError(
                f"--secret-stdin read no client secret: none {where}. Pipe the secret in "
                "(first line), type it at the prompt, or set FALCON_CLIENT_SECRET instead."
            )
    client_id, secret = resolve_credentials(
        args.client_id, secret, hint="give --client-id and --secret-stdin"
    )
    cloud = None if args.base_url is not None else from_env(args.cloud, "cloud")
    member_cid = from_env(args.member_cid, "member_cid")
    return _Given(client_id, secret, member_cid, cloud, args.base_url)


def _file_cache(args: Arguments) -> FileTokenCache | None:
    """The host's token cache, unless ``--no-cache``."""
    if args.no_cache:
        return None
    from .filecache import FileTokenCache  # imported only here: it installs fork hooks

    return FileTokenCache(args.cache_dir)


def _falcon_auth(args: Arguments, given: _Given, cache: FileTokenCache | None) -> FalconAuth:
    """The run's FalconAuth, on the host's token cache unless ``--no-cache``."""
    from .auth import FalconAuth
    from .oauth2 import DEFAULT_TIMEOUT

    timeout = args.timeout if args.timeout is not None else DEFAULT_TIMEOUT
    return FalconAuth(
        given.client_id,
        given.secret,
        member_cid=given.member_cid,
        cloud=given.cloud,
        base_url=given.base_url,
        cache=cache,
        timeout=timeout,
        revoke_on_close=False,  # the token is printed for the caller to use
    )


def _read_secret(stdin: TextIO) -> str:
    """The client secret for ``--secret-stdin``: typed without echo at a terminal (the screen,
    a recording or a shoulder would see it), else the first line of what is piped in."""
    return _read_line(stdin, "Falcon client secret: ")


def _read_line(stdin: TextIO, prompt: str) -> str:
    """The first line of ``stdin``, or at a terminal a line typed without echo after ``prompt``."""
    if not stdin.isatty():
        return stdin.readline().strip()
    import getpass  # only at a terminal

    try:
        # The prompt goes to the terminal, not stdout: $(falcon-auth token) captures only the token.
        return getpass.getpass(prompt).strip()
    except EOFError:  # Ctrl-D: nothing typed, reported as missing
        return ""


def _token(args: Arguments, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    given = _given(args, stdin)
    cache = _file_cache(args)
    found = None
    if cache is not None:
        from ._cached_token import cached_fresh

        found = cached_fresh(
            cache,
            given.client_id,
            given.secret,
            given.member_cid,
            cloud=given.cloud,
            base_url=given.base_url,
        )
    if found is not None:
        token, cached, remaining = found.token, True, found.remaining
    else:
        from ._sources import fetched

        auth = _falcon_auth(args, given, cache)
        with auth, _patience(stderr, auth.base_url):
            token, cached, remaining = fetched(auth.port.tokens).fresh()
    if not args.json:
        stdout.write(token.access_token + "\n")
        return 0
    import datetime

    expires_at = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(
        seconds=remaining
    )
    document = {
        "access_token": token.access_token,
        "token_type": token.token_type,
        "expires_in": int(remaining),
        "expires_at": expires_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "region": token.region,
        "base_url": token.base_url,
        "cached": cached,
    }
    stdout.write(json.dumps(document) + "\n")
    return 0


def _revoke(args: Arguments, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    given = _given(args, stdin)
    if args.token != "-":
        value = args.token
    else:
        value = _read_line(stdin, "Falcon access token to revoke: ")
    if not value:
        raise ConfigurationError(
            "No token to revoke: give it as an argument, on stdin "
            "(falcon-auth revoke < file), or type it at the prompt."
        )
    from ._sources import fetched

    auth = _falcon_auth(args, given, _file_cache(args))
    with auth, _patience(stderr, auth.base_url):
        tokens = fetched(auth.port.tokens)
        tokens.oauth.revoke(value)
        tokens.evict(value)  # only if the cache holds this very token (compare-and-delete)
    stdout.write("revoked\n")
    return 0


@contextlib.contextmanager
def _patience(stderr: TextIO, base_url: str) -> Iterator[None]:
    """Says once on stderr, at a terminal, that a call to Falcon is taking its time: a stalled
    endpoint is otherwise minutes of silence. Pipes and logs get nothing."""
    if not _isatty(stderr):
        yield
        return

    def notice() -> None:
        with contextlib.suppress(OSError, ValueError):  # a closed terminal: nothing to say
            stderr.write(
                f"falcon-auth: waiting for Falcon at {base_url} ... "
                "(--timeout bounds each try; Ctrl-C stops)\n"
            )
            stderr.flush()

    timer = threading.Timer(_NOTICE_AFTER, notice)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (OSError, ValueError):  # closed, or no file behind it
        return False


class _ClientSpec(NamedTuple):
    client_id: str
    secret: str
    region: str
    member_cids: tuple[str, ...]


def _client_spec(spec: str) -> _ClientSpec:
    """Parses ``ID:SECRET[:REGION[:MEMBER_CID,...]]`` for ``--client``."""
    import argparse

    parts = spec.split(":")
    if not 2 <= len(parts) <= 4 or not all(parts):
        raise argparse.ArgumentTypeError(
            f"expected ID:SECRET[:REGION[:MEMBER_CID,...]], got {spec!r}"
        )
    try:
        region = normalize(parts[2]) if len(parts) >= 3 else "us-1"
    except ConfigurationError:
        region = ""
    if region not in DEFAULT_CLOUDS:  # unknown, or "auto": a client lives in one region
        raise argparse.ArgumentTypeError(
            f"unknown region {parts[2]!r} in {spec!r}: a client lives in one of "
            f"{', '.join(DEFAULT_CLOUDS)}"
        )
    members = tuple(parts[3].split(",")) if len(parts) == 4 else ()
    if not all(members):
        raise argparse.ArgumentTypeError(f"an empty member CID in {spec!r}")
    return _ClientSpec(parts[0], parts[1], region, members)


def _timeout(value: str) -> float:
    """Parses ``--timeout``: seconds, more than zero."""
    import argparse

    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise argparse.ArgumentTypeError(f"expected seconds above 0 (e.g. 5 or 2.5), got {value!r}")
    return seconds


def _whole_number(value: str, flag: str, low: int, high: int) -> int:
    """A flag's integer value in [low, high]; one clear line (exit 1) otherwise."""
    try:
        number = int(value, 10)
    except ValueError:
        number = low - 1
    if not low <= number <= high:
        raise ConfigurationError(
            f"{flag} must be a whole number from {low} to {high}, got {value!r}."
        )
    return number


def _emulator(args: Arguments, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    import secrets

    from .testing import DEFAULT_REGIONS, FalconEmulator

    clients = args.client or [_ClientSpec("emulator-client", secrets.token_urlsafe(18), "us-1", ())]
    ids = [client.client_id for client in clients]
    twice = sorted({client_id for client_id in ids if ids.count(client_id) > 1})
    if twice:
        raise ConfigurationError(
            f"--client {twice[0]} is given more than once: one --client per client id (a "
            "second would replace the first's secret)."
        )
    regions = list(DEFAULT_REGIONS)
    regions += [client.region for client in clients if client.region not in regions]
    token_ttl = _whole_number(args.token_ttl, "--token-ttl", 1, 86_400)
    port = _whole_number(args.port, "--port", 0, 65_535)
    if port and port + len(regions) - 1 > 65_535:
        raise ConfigurationError(
            f"--port {port} leaves no room for {len(regions)} regions (one port each, up to 65535)."
        )
    admin_port = None
    if args.admin_port is not None:
        admin_port = _whole_number(args.admin_port, "--admin-port", 0, 65_535)
    emulator = FalconEmulator(
        regions=regions,
        tls=args.tls,
        token_ttl=token_ttl,
        port=port,
        region_header=not args.no_region_header,
    )
    if not args.no_samples:
        emulator.load_samples()
    with _stopped_by_sigterm():
        _start(emulator, port, args.tls)
        try:
            admin = None if admin_port is None else _start_admin(emulator, admin_port)
            for client in clients:
                emulator.add_client(
                    client.client_id,
                    client.secret,
                    region=client.region,
                    member_cids=client.member_cids,
                )
            _announce(emulator, clients, admin, as_json=args.json, stdout=stdout)
            emulator.serve_forever()  # returns on Ctrl-C or TERM, stopped
        except KeyboardInterrupt:
            pass  # Ctrl-C or TERM before serving began: the same clean stop
        finally:
            emulator.stop()
    if not args.json:
        stdout.write("stopped\n")
    return 0


def _start(emulator: FalconEmulator, port: int, tls: bool) -> None:
    try:
        emulator.start()
    except ImportError:
        raise ConfigurationError(
            "--tls needs trustme: pip install 'requests-falcon-auth[testing]'."
        ) from None
    except OSError as exc:
        where = f"ports {port}-{port + len(emulator.regions) - 1}" if port else "a port"
        raise ConfigurationError(f"Could not listen on {where}: {exc.strerror or exc}.") from None


def _start_admin(emulator: FalconEmulator, port: int) -> str:
    try:
        return emulator.start_admin(port)
    except OSError as exc:
        raise ConfigurationError(
            f"Could not listen on admin port {port}: {exc.strerror or exc}."
        ) from None


def _announce(
    emulator: FalconEmulator,
    clients: Sequence[_ClientSpec],
    admin: str | None,
    *,
    as_json: bool,
    stdout: TextIO,
) -> None:
    """Everything a script needs to reach the emulator: as text lines, or one JSON object."""
    if as_json:
        document = {
            "regions": emulator.clouds,
            "ca_bundle": emulator.ca_bundle,
            "admin": admin,
            "clients": [
                {
                    "client_id": client.client_id,
                    "client_secret": client.secret,
                    "region": client.region,
                    "member_cids": list(client.member_cids),
                }
                for client in clients
            ],
        }
        stdout.write(json.dumps(document) + "\n")
        stdout.flush()
        return
    for region, url in emulator.clouds.items():
        stdout.write(f"{region:<9} {url}\n")
    if emulator.ca_bundle:
        stdout.write(f"CA bundle {emulator.ca_bundle} (requests: verify=...)\n")
    if admin:
        stdout.write(f"admin     {admin}\n")
    for client in clients:
        members = f", member CIDs {','.join(client.member_cids)}" if client.member_cids else ""
        stdout.write(
            f"client    FALCON_CLIENT_ID={client.client_id} "
            f"FALCON_CLIENT_SECRET={client.secret} ({client.region}{members})\n"
        )
    stdout.write("ready; Ctrl-C stops\n")
    stdout.flush()


@contextlib.contextmanager
def _stopped_by_sigterm() -> Iterator[None]:
    """TERM stops the emulator as Ctrl-C does (servers closed, the CA file deleted)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread (tests call main() from others)
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    import signal  # only the emulator waits for one

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _demo(args: Arguments, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    from .demo import run_demo

    return run_demo(out=stdout)


_COMMANDS: Final[dict[str, Callable[[Arguments, TextIO, TextIO, TextIO], int]]] = {
    "token": _token,
    "revoke": _revoke,
    "emulator": _emulator,
    "demo": _demo,
}


def main(
    argv: Sequence[str] | None = None,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Runs the console script; returns the exit code."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    args = None
    try:
        argv = sys.argv[1:] if argv is None else argv
        args = _plain_token(argv) or _parser(argv).parse_args(argv)
        code = _COMMANDS[args.command](args, stdin, stdout, stderr)
        stdout.flush()  # here, where a closed pipe can still be answered quietly
        return code
    except FalconAuthError as exc:
        stderr.write(f"falcon-auth: {_in_cli_words(str(exc), args)}\n")
        return 1
    except BrokenPipeError:
        # The reader went away (falcon-auth token | true): what a shell expects of a command
        # killed by SIGPIPE, without the traceback Python gives for the flush at exit.
        _silence(stdout)
        return _EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        stderr.write("falcon-auth: interrupted\n")
        return _EXIT_INTERRUPTED


def _silence(stdout: TextIO) -> None:
    """Points a real stdout whose reader has gone at /dev/null, so the interpreter's flush at
    exit finds nothing to write (see "Note on SIGPIPE" in Python's signal documentation)."""
    try:
        fd = stdout.fileno()
    except (OSError, ValueError):  # not a file (a test's StringIO): nothing will flush it
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


# The library's advice names Python arguments; at the shell the same advice names flags.
# (Patterns, compiled by ``re`` when an error is reported: a successful run compiles none.)
_CLI_WORDS: Final = (
    (r"pass FileTokenCache\(path=\.\.\.\)", "give --cache-dir"),
    (r"Pass FileTokenCache\(path=\.\.\.\)", "Give --cache-dir"),
    (r"raise timeout=", "raise --timeout"),
    (r"\(cloud='([\w-]+)' or FALCON_CLOUD=\1\)", r"(--cloud \1 or FALCON_CLOUD=\1)"),
    (r"\(cloud= or FALCON_CLOUD\)", "(--cloud or FALCON_CLOUD)"),
    (
        r"Name it with cloud= \(or FALCON_CLOUD\), or use cloud='auto'\.",
        "Name it with --cloud (or FALCON_CLOUD), or use --cloud auto.",
    ),
    (r"or add the host to clouds= if it is your gateway", "or give your gateway as --base-url"),
    (r"\(check base_url and proxies\)", "(check --base-url and proxies)"),
    (r"\(session\.verify, REQUESTS_CA_BUNDLE\)", "(REQUESTS_CA_BUNDLE)"),
    (r"^base_url\b", "--base-url"),
)
_SET_CLOUD: Final = r"Set cloud='([\w-]+)' \(or FALCON_CLOUD=\1\)\."


def _in_cli_words(message: str, args: Arguments | None) -> str:
    """``message`` with the library's Python arguments replaced by the flags that set them."""
    for pattern, replacement in _CLI_WORDS:
        message = re.sub(pattern, replacement, message)
    with_base_url = args is not None and getattr(args, "base_url", None) is not None
    # Behind --base-url (a gateway, the emulator) --cloud would leave it for CrowdStrike's host.
    advice = (
        r"Give --base-url the URL of region \1, or use --cloud \1 (or FALCON_CLOUD=\1) "
        "without --base-url."
        if with_base_url
        else r"Use --cloud \1 (or FALCON_CLOUD=\1)."
    )
    return re.sub(_SET_CLOUD, advice, message)
