"""The ``falcon-auth`` console script: token, revoke, emulator, demo.

Exit codes: 0 success, 1 failure (one line on stderr, no traceback), 2 usage errors (argparse).
Secrets never come from a flag value, where ``ps`` and shell history would show them: the
client secret comes from ``FALCON_CLIENT_SECRET`` or, with ``--secret-stdin``, from stdin.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from collections.abc import Sequence
from typing import TextIO

from .__version__ import __version__
from .auth import ENVIRONMENT, resolve_credentials
from .clouds import AUTODISCOVER, normalize
from .errors import ConfigurationError, FalconAuthError
from .oauth2 import OAuth2

__all__ = ["main"]


def _add_credentials(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("credentials (default: the FALCON_* environment variables)")
    group.add_argument("--client-id", help="API client id (default: $FALCON_CLIENT_ID)")
    group.add_argument(
        "--secret-stdin",
        action="store_true",
        help="read the client secret from the first line of stdin (default: $FALCON_CLIENT_SECRET)",
    )
    group.add_argument("--member-cid", help="MSSP child CID (default: $FALCON_MEMBER_CID)")
    where = group.add_mutually_exclusive_group()
    where.add_argument("--cloud", help="us-1, us-2, eu-1, us-gov-1, us-gov-2, us-3 or auto")
    where.add_argument("--base-url", help="custom API base URL (a gateway); no autodiscovery")


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
        'curl -H "Authorization: Bearer $(falcon-auth token)" ...',
    )
    _add_credentials(token)
    token.add_argument(
        "--json", action="store_true", help="print JSON with token_type, expires_in and region"
    )

    revoke = commands.add_parser(
        "revoke",
        help="revoke a token",
        description="Revoke a token. Give '-' (or nothing) to read it from stdin, which keeps it "
        "out of the process list.",
    )
    _add_credentials(revoke)
    revoke.add_argument("token", nargs="?", default="-", help="the token, or - for stdin")

    emulator = commands.add_parser(
        "emulator",
        help="run the Falcon emulator in the foreground",
        description="Serve an emulated Falcon OAuth2 service and API gateway on loopback until "
        "Ctrl-C. Each region listens on its own port.",
    )
    emulator.add_argument(
        "--port", type=int, default=0, help="port of us-1; other regions take the next ports"
    )
    emulator.add_argument("--tls", action="store_true", help="serve https with a minted CA")
    emulator.add_argument(
        "--client",
        type=_client_spec,
        action="append",
        default=[],
        metavar="ID:SECRET[:REGION]",
        help="register an API client (repeatable; default: one random client in us-1)",
    )
    emulator.add_argument(
        "--token-ttl", type=int, default=1799, metavar="SECONDS", help="lifetime of tokens"
    )

    commands.add_parser(
        "demo",
        help="narrate FalconAuth against an embedded emulator (no credentials, no network)",
        description="Start the emulator and walk through lazy fetch, reuse, renewal, a 401 "
        "healed by one retry, and revoke on close, with the emulator's counters as proof.",
    )
    return parser


def _oauth2(args: argparse.Namespace, stdin: TextIO) -> OAuth2:
    secret = stdin.readline().strip() if args.secret_stdin else None
    client_id, secret = resolve_credentials(
        args.client_id, secret, hint="give --client-id and --secret-stdin"
    )
    return OAuth2(
        client_id,
        secret,
        args.member_cid or os.environ.get(ENVIRONMENT["member_cid"]),
        cloud=args.cloud or os.environ.get(ENVIRONMENT["cloud"]) or "auto",
        base_url=args.base_url,
    )


def _token(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    oauth = _oauth2(args, stdin)
    try:
        token = oauth.token()
    finally:
        oauth.close()
    if args.json:
        document = {
            "access_token": token.access_token,
            "token_type": token.token_type,
            "expires_in": token.expires_in,
            "region": token.region,
            "base_url": token.base_url,
        }
        stdout.write(json.dumps(document) + "\n")
    else:
        stdout.write(token.access_token + "\n")
    return 0


def _revoke(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    oauth = _oauth2(args, stdin)
    value = stdin.readline().strip() if args.token == "-" else args.token
    if not value:
        raise ConfigurationError("No token to revoke: give it as an argument or on stdin.")
    try:
        oauth.revoke(value)
    finally:
        oauth.close()
    stdout.write("revoked\n")
    return 0


def _client_spec(spec: str) -> tuple[str, str, str]:
    """Parses ``ID:SECRET[:REGION]`` for ``--client``."""
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise argparse.ArgumentTypeError(f"expected ID:SECRET[:REGION], got {spec!r}")
    try:
        region = normalize(parts[2]) if len(parts) == 3 else "us-1"
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if region == AUTODISCOVER:
        raise argparse.ArgumentTypeError("a client lives in one region, not 'auto'")
    return parts[0], parts[1], region


def _emulator(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    from .testing import DEFAULT_REGIONS, FalconEmulator

    clients = args.client or [("emulator-client", secrets.token_urlsafe(18), "us-1")]
    regions = list(DEFAULT_REGIONS)
    regions += [region for _, _, region in clients if region not in regions]
    emulator = FalconEmulator(
        regions=regions, tls=args.tls, token_ttl=args.token_ttl, port=args.port
    )
    with emulator:
        for client_id, secret, region in clients:
            emulator.add_client(client_id, secret, region=region)
        for region, url in emulator.clouds.items():
            stdout.write(f"{region:<9} {url}\n")
        if emulator.ca_bundle:
            stdout.write(f"CA bundle {emulator.ca_bundle} (requests: verify=...)\n")
        for client_id, secret, region in clients:
            stdout.write(
                f"client    FALCON_CLIENT_ID={client_id} FALCON_CLIENT_SECRET={secret} ({region})\n"
            )
        stdout.write("ready; Ctrl-C stops\n")
        stdout.flush()
        emulator.serve_forever()  # returns on Ctrl-C
    stdout.write("stopped\n")
    return 0


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
