"""The ``falcon-auth`` console script: token, revoke, emulator, demo.

Exit codes: 0 success, 1 failure (one line on stderr, no traceback), 2 usage errors (argparse).
Secrets never come from a flag value, where ``ps`` and shell history would show them: the
client secret comes from ``FALCON_CLIENT_SECRET`` or, with ``--secret-stdin``, from stdin (typed
without echo when stdin is a terminal). ``token`` and ``revoke`` write to stdout only on
success, so ``set -o pipefail`` pipelines never get half an answer.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import getpass
import json
import secrets
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, NamedTuple, TextIO

from .__version__ import __version__
from ._sources import fetched
from .auth import resolve_credentials
from .clouds import AUTODISCOVER, normalize
from .errors import ConfigurationError, FalconAuthError

if TYPE_CHECKING:
    from .auth import FalconAuth
    from .testing import FalconEmulator

__all__ = ["main"]


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
    cache = parser.add_argument_group("token cache (one token for every run on this host)")
    cache.add_argument(
        "--no-cache", action="store_true", help="neither read nor write the token cache"
    )
    cache.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="the cache directory (default: the user's cache directory; created 0700)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="falcon-auth",
        description="CrowdStrike Falcon OAuth2 tokens from the command line, and a local emulator.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    token = commands.add_parser(
        "token",
        help="print a fresh access token",
        description="Print a fresh access token, e.g. "
        'curl -H "Authorization: Bearer $(falcon-auth token)" ... The token is cached, '
        "encrypted under a key derived from the client secret, and reused by later runs while "
        "it is fresh: a shell loop or a cron job makes one token request per token lifetime.",
    )
    _add_credentials(token)
    token.add_argument(
        "--json",
        action="store_true",
        help="print JSON: the token, its expiry (seconds from now and ISO time), its region, "
        "and whether it came from the cache",
    )

    revoke = commands.add_parser(
        "revoke",
        help="revoke a token",
        description="Revoke a token. Give '-' (or nothing) to read it from stdin, which keeps it "
        "out of the process list. A revoked token is evicted from the token cache.",
    )
    _add_credentials(revoke)
    revoke.add_argument("token", nargs="?", default="-", help="the token, or - for stdin")

    emulator = commands.add_parser(
        "emulator",
        help="run the Falcon emulator in the foreground",
        description="Serve an emulated Falcon OAuth2 service and API gateway on loopback until "
        "Ctrl-C, with a sample tenant whose writes change what later reads show. Each region "
        "listens on its own port.",
    )
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
        help="register an API client (repeatable; default: one random client in us-1)",
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

    commands.add_parser(
        "demo",
        help="narrate FalconAuth against an embedded emulator (no credentials, no network)",
        description="Start the emulator and walk through lazy fetch, reuse, renewal, a 401 "
        "healed by one retry, and revoke on close, with the emulator's counters as proof.",
    )
    return parser


def _falcon_auth(args: argparse.Namespace, stdin: TextIO) -> FalconAuth:
    """The credentials of the command line, on the host's token cache unless ``--no-cache``."""
    from .auth import FalconAuth

    secret = _read_secret(stdin) if args.secret_stdin else None
    client_id, secret = resolve_credentials(
        args.client_id, secret, hint="give --client-id and --secret-stdin"
    )
    cache = None
    if not args.no_cache:
        from .filecache import FileTokenCache  # imported only here: it installs fork hooks

        cache = FileTokenCache(args.cache_dir)
    return FalconAuth(
        client_id,
        secret,
        member_cid=args.member_cid,
        cloud=args.cloud,
        base_url=args.base_url,
        cache=cache,
        revoke_on_close=False,  # the token is printed for the caller to use
    )


def _read_secret(stdin: TextIO) -> str:
    """The client secret for ``--secret-stdin``: typed without echo at a terminal (the screen,
    a recording or a shoulder would see it), else the first line of what is piped in."""
    if not stdin.isatty():
        return stdin.readline().strip()
    try:
        # The prompt goes to the terminal, not stdout: $(falcon-auth token) captures only the token.
        return getpass.getpass("Falcon client secret: ").strip()
    except EOFError:  # Ctrl-D: no secret, reported as missing
        return ""


def _token(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    auth = _falcon_auth(args, stdin)
    with auth:
        token, cached, remaining = fetched(auth.port.tokens).fresh()
    if not args.json:
        stdout.write(token.access_token + "\n")
        return 0
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


def _revoke(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    auth = _falcon_auth(args, stdin)
    value = stdin.readline().strip() if args.token == "-" else args.token
    if not value:
        raise ConfigurationError("No token to revoke: give it as an argument or on stdin.")
    with auth:
        tokens = fetched(auth.port.tokens)
        tokens.oauth.revoke(value)
        tokens.evict(value)  # only if the cache holds this very token (compare-and-delete)
    stdout.write("revoked\n")
    return 0


class _ClientSpec(NamedTuple):
    client_id: str
    secret: str
    region: str
    member_cids: tuple[str, ...]


def _client_spec(spec: str) -> _ClientSpec:
    """Parses ``ID:SECRET[:REGION[:MEMBER_CID,...]]`` for ``--client``."""
    parts = spec.split(":")
    if not 2 <= len(parts) <= 4 or not all(parts):
        raise argparse.ArgumentTypeError(
            f"expected ID:SECRET[:REGION[:MEMBER_CID,...]], got {spec!r}"
        )
    try:
        region = normalize(parts[2]) if len(parts) >= 3 else "us-1"
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if region == AUTODISCOVER:
        raise argparse.ArgumentTypeError("a client lives in one region, not 'auto'")
    members = tuple(parts[3].split(",")) if len(parts) == 4 else ()
    if not all(members):
        raise argparse.ArgumentTypeError(f"an empty member CID in {spec!r}")
    return _ClientSpec(parts[0], parts[1], region, members)


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


def _emulator(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    from .testing import DEFAULT_REGIONS, FalconEmulator

    clients = args.client or [_ClientSpec("emulator-client", secrets.token_urlsafe(18), "us-1", ())]
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

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _demo(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    from .demo import run_demo

    return run_demo(out=stdout)


_COMMANDS = {"token": _token, "revoke": _revoke, "emulator": _emulator, "demo": _demo}


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
    args = _parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args, stdin, stdout)
    except FalconAuthError as exc:
        stderr.write(f"falcon-auth: {exc}\n")
        return 1
    except KeyboardInterrupt:
        stderr.write("falcon-auth: interrupted\n")
        return 130
