"""Every Python and JavaScript example of README.rst and of the docs site (docs/) runs as written.

Each ``.. code-block:: python`` of README.rst and of docs/*.rst, and each ```` ```python ````
fence of docs/*.md, is one test, named after where it comes from (``README.rst:301-fleets``:
file, first line of the code, section). Docs pages that include README sections are not read
twice: their ``.. include::`` directives are not followed, only their own blocks count.

How a block runs:

- A block runs with ``exec`` in a fresh namespace, after the blocks before it in the same section
  (a section reads top to bottom: the httpx section defines functions that its next block calls
  against the emulator). Tracebacks name the file and line of the documentation.
- A block that defines ``test_*`` functions is a test file of the reader's: it runs through
  ``pytester`` with the pytest plugin (and anyio's) loaded, and all its tests must pass.
- The environment is a reader's: ``FALCON_CLIENT_ID``, ``FALCON_CLIENT_SECRET`` and
  ``FALCON_TOKEN`` are set (to placeholders), so blocks that build ``FalconAuth()`` from the
  environment run; the user cache directory is a temporary one. The network is loopback only:
  any other host name lookup raises, so a block that says "no I/O yet" is held to it, and one that
  reaches for the real Falcon fails instead of hanging.
- Blocks that call the real Falcon API are not run (the allow-list ``NOT_RUN``, a reason each);
  they are still compiled, and their imports run, so a renamed API breaks them
  (``test_production_example_compiles_and_its_imports_exist``).
- A JavaScript block (CrowdStrike's JavaScript SDK against the emulator) runs under Node as an ES
  module beside the pinned falconjs, with ``FALCON_US1_URL`` the us-1 URL of an emulator that
  knows the client ``my-id`` / ``my-secret``.
- Shell blocks (``::`` literal blocks, ``.. code-block:: shell``) are not run; the commands they
  show are tested in tests/test_cli.py and .ci/run.
"""

from __future__ import annotations

import ast
import io
import os
import re
import socket
import subprocess
import textwrap
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from required_tools import node_tool

from requests_falcon_auth.testing import FalconEmulator

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [
    ROOT / "README.rst",
    *sorted((ROOT / "docs").glob("*.rst")),
    *sorted((ROOT / "docs").glob("*.md")),
]

# Blocks shown against the real service, matched by a line of their code: why each is not run.
NOT_RUN = {
    'session.get("https://api.crowdstrike.com/devices/queries/devices/v1")': (
        "production: the one-liner calls api.crowdstrike.com with real credentials"
    ),
    'with FalconSession(cloud="us-2") as falcon:': (
        "production: calls the real us-2 cloud with credentials from the environment "
        "(docs/getting-started.rst makes the same calls against the emulator)"
    ),
    "with FalconAuth() as auth, AuthorizedPoolManager(auth) as http:": (
        "production: calls api.crowdstrike.com with real credentials"
    ),
}

# What some blocks print, checked when they run (block matched by a line of its code).
EXPECTED_OUTPUT = {
    "print(asyncio.run(page_statuses(auth, pages=20)))": f"5\n{[200] * 20}\n1 1\n",
    "hosts = Hosts(": "9 build-03.prod.example.com\n",
    'falcon.add_collection("alerts"': (
        "['alert-1', 'alert-2'] 5\n{'ids': ['alert-1', 'alert-2']} my-id\n"
    ),
    "print(len(ids), api.auth.region)": "10 us-2\n1 1\n",
    "except rfa.CredentialsError as error:": "CredentialsError 403\n0\n",
    "cache=FileTokenCache(directory": "1 0\n",
    "falcon.hosts.queryDevicesByFilter(0, 10)": "10 37\n",
}

_RST_BLOCK = re.compile(
    r"^(?P<indent>[ \t]*)\.\. (?:code-block|code|sourcecode):: (?P<lang>\S+)\n"
    r"(?:(?P=indent)[ \t]+:.*\n)*\n"
    r"(?P<body>(?:(?P=indent)[ \t]+.*\n|[ \t]*\n)+)",
    re.M,
)
_MD_BLOCK = re.compile(r"^```(?P<lang>[\w-]+)[^\n]*\n(?P<body>.*?)^```[ \t]*$", re.M | re.S)
_RST_HEADING = re.compile(r"^(?P<title>[^\s].*)\n(?P<rule>[=\-~^\"'`#*+]{3,})[ \t]*$", re.M)
_MD_HEADING = re.compile(r"^#{1,6}\s+(?P<title>.+)$", re.M)


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # first line of the code, 1-based
    section: str
    language: str
    code: str

    @property
    def where(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.section.lower()).strip("-") or "top"
        return f"{self.path.relative_to(ROOT)}:{self.line}-{slug}"

    @property
    def is_pytest_file(self) -> bool:
        tree = ast.parse(self.code)
        return any(
            isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.name.startswith("test_")
            for node in tree.body
        )

    def compiled(self) -> Any:
        # Padded so that tracebacks give the documentation's own line numbers.
        return compile("\n" * (self.line - 1) + self.code, str(self.path), "exec")


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _section_at(text: str, offset: int, headings: re.Pattern[str]) -> str:
    titles = [m.group("title").strip() for m in headings.finditer(text, 0, offset)]
    return titles[-1] if titles else ""


def blocks_of(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    found = []
    if path.suffix == ".md":
        for match in _MD_BLOCK.finditer(text):
            code = match.group("body")
            line = _line_of(text, match.start("body"))
            section = _section_at(text, match.start(), _MD_HEADING)
            found.append(Block(path, line, section, match.group("lang"), code))
    else:
        for match in _RST_BLOCK.finditer(text):
            body = match.group("body")
            code = textwrap.dedent(body).strip("\n") + "\n"
            leading = len(body) - len(body.lstrip("\n"))
            line = _line_of(text, match.start("body") + leading)
            section = _section_at(text, match.start(), _RST_HEADING)
            found.append(Block(path, line, section, match.group("lang"), code))
    return found


ALL_BLOCKS = [block for path in SOURCES for block in blocks_of(path)]
PYTHON_BLOCKS = [block for block in ALL_BLOCKS if block.language in ("python", "py", "python3")]
JAVASCRIPT_BLOCKS = [block for block in ALL_BLOCKS if block.language in ("javascript", "js")]


def reason_not_run(block: Block) -> str | None:
    for line, reason in NOT_RUN.items():
        if line in block.code:
            return reason
    return None


def expected_output(block: Block) -> str | None:
    for line, printed in EXPECTED_OUTPUT.items():
        if line in block.code:
            return printed
    return None


def earlier_in_section(block: Block) -> list[Block]:
    return [
        other
        for other in PYTHON_BLOCKS
        if other.path == block.path
        and other.section == block.section
        and other.line < block.line
        and not other.is_pytest_file
        and reason_not_run(other) is None
    ]


@pytest.fixture
def readers_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """What a reader running the examples has: credentials in the environment, a cache
    directory; and no network beyond loopback."""
    monkeypatch.setenv("FALCON_CLIENT_ID", "example-client-id")
    monkeypatch.setenv("FALCON_CLIENT_SECRET", "example-client-secret")
    monkeypatch.setenv("FALCON_TOKEN", "example-pre-issued-token")
    monkeypatch.delenv("FALCON_MEMBER_CID", raising=False)
    monkeypatch.delenv("FALCON_CLOUD", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    real_getaddrinfo = socket.getaddrinfo

    def loopback_only(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in (None, "localhost", "127.0.0.1", "::1", b"127.0.0.1", b"localhost"):
            raise OSError(f"the documentation's examples reach no network: {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", loopback_only)


def test_the_sources_have_examples() -> None:
    """The extraction finds the blocks (a changed markup would otherwise skip them all)."""
    readme = [block for block in PYTHON_BLOCKS if block.path.name == "README.rst"]
    assert len(readme) >= 15
    assert any(block.path.parent.name == "docs" for block in PYTHON_BLOCKS)
    assert JAVASCRIPT_BLOCKS
    for line in NOT_RUN:  # no stale entries
        assert any(line in block.code for block in PYTHON_BLOCKS), line
    for line in EXPECTED_OUTPUT:
        assert any(line in block.code for block in PYTHON_BLOCKS + JAVASCRIPT_BLOCKS), line


@pytest.mark.usefixtures("readers_environment")
@pytest.mark.parametrize(
    "block",
    [b for b in PYTHON_BLOCKS if not b.is_pytest_file and reason_not_run(b) is not None],
    ids=lambda b: b.where,
)
def test_production_example_compiles_and_its_imports_exist(block: Block) -> None:
    """A block that calls the real Falcon API (``NOT_RUN`` says why) is not run: CI cannot
    reach Falcon. It is valid Python, and what it imports exists."""
    assert block.compiled() is not None
    imports: list[ast.stmt] = [
        n for n in ast.parse(block.code).body if isinstance(n, (ast.Import, ast.ImportFrom))
    ]
    exec(compile(ast.Module(body=imports, type_ignores=[]), str(block.path), "exec"), {})


@pytest.mark.usefixtures("readers_environment")
@pytest.mark.parametrize(
    "block",
    [b for b in PYTHON_BLOCKS if not b.is_pytest_file and reason_not_run(b) is None],
    ids=lambda b: b.where,
)
def test_python_example_runs_as_written(block: Block) -> None:
    namespace: dict[str, Any] = {"__name__": "__docs_example__"}
    printed = io.StringIO()
    with redirect_stdout(printed):
        for earlier in earlier_in_section(block):
            exec(earlier.compiled(), namespace)
        preamble = printed.getvalue()
        exec(block.compiled(), namespace)
    expected = expected_output(block)
    if expected is not None:
        assert printed.getvalue()[len(preamble) :] == expected


@pytest.mark.parametrize(
    "block", [b for b in PYTHON_BLOCKS if b.is_pytest_file], ids=lambda b: b.where
)
def test_pytest_example_passes(
    block: Block, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A test module of the reader's, with the plugin installed as ``pip install`` leaves it."""
    # Autoload off and the plugins named: the plugin must not be registered twice.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(**{"test_example": block.code})
    tests = [
        node
        for node in ast.parse(block.code).body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.name.startswith("test_")
    ]
    result = pytester.runpytest(
        "-v", "-p", "requests_falcon_auth.testing.pytest_plugin", "-p", "anyio.pytest_plugin"
    )
    outcomes = result.parseoutcomes()
    # Each test passes (an anyio test once per installed backend: asyncio, and trio if present).
    assert outcomes.get("passed", 0) >= len(tests), result.stdout.str()
    assert set(outcomes) == {"passed"}, result.stdout.str()


@pytest.mark.parametrize("block", JAVASCRIPT_BLOCKS, ids=lambda b: b.where)
def test_javascript_example_runs_as_written(block: Block, falconjs: Path) -> None:
    script = falconjs / f"example-{block.line}.mjs"
    script.write_text(block.code, encoding="utf-8")
    with FalconEmulator() as falcon:
        falcon.add_client("my-id", "my-secret")
        env = dict(os.environ, FALCON_US1_URL=falcon.base_url("us-1"))
        node = subprocess.run(
            [node_tool("node"), str(script)],
            cwd=falconjs,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert node.returncode == 0, f"{block.where}: {node.stderr}"
    expected = expected_output(block)
    if expected is not None:
        assert node.stdout == expected
