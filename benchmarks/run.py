"""Runs the rows, prints the table and writes it to ``benchmarks/results.md``.

    python -m benchmarks [--quick] [--rows 1,3] [--output PATH | --no-write]

Progress goes to stderr, the table to stdout. Every connection stays on loopback (see
:mod:`benchmarks.loopback`); the run fails rather than report a figure from one that did not.
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
from .peers import PEERS, SETUP_NOTES, label
from .remote import Lab
from .report import Cell, Table
from .rows import ROWS

__all__ = ["main"]

DEFAULT_OUTPUT: Final = Path(__file__).with_name("results.md")


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="requests-falcon-auth beside falconpy, requests-auth and authlib, "
        "against the embedded Falcon emulator.",
    )
    parser.add_argument("--quick", action="store_true", help="about a minute: smaller counts")
    parser.add_argument(
        "--rows", help="comma-separated row numbers to run (default: all), e.g. 1,3"
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="markdown file")
    where.add_argument("--no-write", action="store_true", help="print only")
    return parser.parse_args(argv)


def _selected(rows: str | None) -> list[str]:
    numbers = [row.NUMBER for row in ROWS]
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


def _document(table: Table, command: str, seconds: float) -> str:
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
            table.markdown(),
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit status."""
    args = _arguments(argv)
    selected = _selected(args.rows)
    budget = QUICK if args.quick else FULL
    loopback.install()
    started = time.monotonic()
    sections = []
    with Lab() as lab:
        for row in ROWS:
            if row.NUMBER not in selected:
                continue
            print(f"row {row.NUMBER}: {row.TITLE} ...", file=sys.stderr, flush=True)
            began = time.monotonic()
            sections.append(row.run(lab, budget))
            print(f"row {row.NUMBER}: {time.monotonic() - began:.1f} s", file=sys.stderr)
    refused = loopback.refused()
    if refused:
        print(f"connections refused by the loopback guard: {refused}", file=sys.stderr)
        return 1
    columns = {name: Cell(label(name), (f"setup-{name}",)) for name in PEERS}
    notes = {f"setup-{name}": text for name, text in SETUP_NOTES.items()}
    table = Table(columns, sections, notes)
    document = _document(table, _command(args), time.monotonic() - started)
    print(document)
    if not args.no_write:
        args.output.write_text(document, encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
