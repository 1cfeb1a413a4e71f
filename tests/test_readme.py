"""README's examples that start the emulator themselves run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.rst"
_BLOCK = re.compile(r"^\.\. code-block:: python\n\n((?:    .*\n|\n)+)", re.M)


def section(title: str) -> str:
    """The text under a README heading, up to the next heading of any level."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n{title}\n") + len(title) + 2
    following = re.search(r"\n[^\n]+\n[=~\-^]{3,}\n", text[start:])
    return text[start : start + following.start()] if following else text[start:]


def python_blocks(text: str) -> list[str]:
    return [re.sub(r"^    ", "", block, flags=re.M) for block in _BLOCK.findall(text)]


def test_the_httpx_section_runs_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    blocks = python_blocks(section("httpx, sync and async"))
    assert len(blocks) == 2
    namespace: dict[str, object] = {"__name__": "readme"}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    printed = capsys.readouterr().out.split("\n")
    assert printed[:3] == ["5", str([200] * 20), "1 1"]


def test_the_falconpy_example_runs_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    blocks = python_blocks(section("CrowdStrike's SDKs"))
    assert len(blocks) == 1
    exec(compile(blocks[0], str(README), "exec"), {"__name__": "readme"})
    assert capsys.readouterr().out == "9 build-03.prod.example.com\n"


def test_the_api_data_example_runs_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    blocks = python_blocks(section("API data"))
    assert len(blocks) == 1
    exec(compile(blocks[0], str(README), "exec"), {"__name__": "readme"})
    assert capsys.readouterr().out == (
        "['alert-1', 'alert-2'] 5\n{'ids': ['alert-1', 'alert-2']} my-id\n"
    )
