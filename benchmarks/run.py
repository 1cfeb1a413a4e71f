"""Runs the rows, prints the tables and writes them to ``benchmarks/results.md``.

    python -m benchmarks [--quick] [--rows 1,3,7] [--output PATH | --no-write]

Rows 1-6, 11-13 and 15-17 make the main table (``requests`` and threads, beside falconpy,
requests-auth and authlib, and the emulator itself); rows 7-10 and 14 a second one, "httpx and
asyncio", beside httpx-auth and authlib's ``AsyncOAuth2Client``. Progress goes to stderr, the
document to stdout. Every connection stays on loopback (see :mod:`benchmarks.loopback`); the
run fails rather than report a figure from one that did not.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from . import loopback
from .budget import FULL, QUICK
from .httpx_peers import HTTPX_PEERS, HTTPX_SETUP_NOTES, httpx_label
from .peers import PEERS, SETUP_NOTES, label
from .remote import Lab
from .report import Cell, Section, Table
from .rows import HTTPX_ROWS, ROWS

__all__ = ["main"]

DEFAULT_OUTPUT: Final = Path(__file__).with_name("results.md")


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="requests-falcon-auth beside falconpy, requests-auth and authlib, and "
        "beside httpx-auth and authlib on httpx, against the embedded Falcon emulator.",
    )
    parser.add_argument("--quick", action="store_true", help="about a minute: smaller counts")
    parser.add_argument(
        "--rows",
        help="comma-separated row numbers to run (default: all), e.g. 1,3; "
        "1-6 and 11-13 are requests and threads, 7-10 and 14 httpx and asyncio, 15 the emulator, "
        "16 falconpy on this engine, 17 the command line",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="markdown file")
    where.add_argument("--no-write", action="store_true", help="print only")
    return parser.parse_args(argv)


def _selected(rows: str | None) -> list[str]:
    numbers = [row.NUMBER for row in (*ROWS, *HTTPX_ROWS)]
    if rows is None:
        return numbers
    wanted = [part.strip() for part in rows.split(",") if part.strip()]
    unknown = sorted(set(wanted) - set(numbers))
    if unknown:
        raise SystemExit(f"unknown rows {', '.join(unknown)}; the rows are {', '.join(numbers)}")
    return [number for number in numbers if number in wanted]


def _command(args: argparse.Namespace) -> str:
    parts = ["python -m benchmarks"]
    if args.quick:
        parts.append("--quick")
    if args.rows:
        parts.append(f"--rows {args.rows}")
    return " ".join(parts)


def _tables(sections: list[Section], httpx_sections: list[Section]) -> list[str]:
    """The main table and the httpx one, each only if a row of it ran, footnotes numbered on."""
    parts = []
    next_note = 1
    if sections:
        columns = {name: Cell(label(name), (f"setup-{name}",)) for name in PEERS}
        notes = {f"setup-{name}": text for name, text in SETUP_NOTES.items()}
        table = Table(columns, sections, notes)
        parts.append(table.markdown())
        next_note = table.next_note()
    if httpx_sections:
        columns = {name: Cell(httpx_label(name), (f"httpx-setup-{name}",)) for name in HTTPX_PEERS}
        notes = {f"httpx-setup-{name}": text for name, text in HTTPX_SETUP_NOTES.items()}
        table = Table(columns, httpx_sections, notes, first_note=next_note)
        parts.extend(
            [
                "## httpx and asyncio",
                "",
                "The same emulator and budgets, with `httpx` clients: this library's "
                "`FalconHttpxAuth` beside the httpx auths a Falcon user might pick instead. "
                "Rows 7 to 10 and 14 run on one asyncio event loop per trial; a library that "
                "fetches its token with a blocking call on the loop stops every task on it "
                "(row 10).",
                "",
                table.markdown(),
            ]
        )
    return parts


def _document(parts: list[str], command: str, seconds: float) -> str:
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    machine = (
        f"2 shared cores ({platform.system()} {platform.machine()}, {os.cpu_count()} CPUs "
        f"visible), {platform.python_implementation()} {platform.python_version()}"
    )
    return "\n".join(
        [
            "# Benchmarks",
            "",
            f"`{command}`, {today}, {machine}; the run took {seconds:.0f} s.",
            "",
            "Every figure comes from this one run. Each library talks to the same embedded "
            "Falcon emulator, in a process of its own, over loopback only; counts come from "
            "the emulator's counters. Ratios compare libraries within a row; absolute times "
            "are context, and depend on the machine.",
            "",
            *parts,
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit status."""
    args = _arguments(argv)
    selected = _selected(args.rows)
    budget = QUICK if args.quick else FULL
    loopback.install()
    started = time.monotonic()
    sections: list[Section] = []
    httpx_sections: list[Section] = []
    with Lab() as lab:
        for rows, into in ((ROWS, sections), (HTTPX_ROWS, httpx_sections)):
            for row in rows:
                if row.NUMBER not in selected:
                    continue
                print(f"row {row.NUMBER}: {row.TITLE} ...", file=sys.stderr, flush=True)
                began = time.monotonic()
                into.append(row.run(lab, budget))
                print(f"row {row.NUMBER}: {time.monotonic() - began:.1f} s", file=sys.stderr)
    refused = loopback.refused()
    if refused:
        print(f"connections refused by the loopback guard: {refused}", file=sys.stderr)
        return 1
    parts = _tables(sections, httpx_sections)
    document = _document(parts, _command(args), time.monotonic() - started)
    print(document)
    if not args.no_write:
        args.output.write_text(document, encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
