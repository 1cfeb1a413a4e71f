"""Sphinx configuration: the documentation site of requests-falcon-auth.

Build it (warnings are errors) from the repository root::

    python -m sphinx -W --keep-going -b html docs "$(mktemp -d)"

Prose pages include README.rst's sections (between ``.. docs-start: NAME`` and
``.. docs-end: NAME`` comments) and benchmarks/results.md, so neither is copied here.
README's links to its own sections (```Title <label_>`_``, which GitHub follows) point into
other pages once the sections are split up: :func:`setup` turns them into ``:ref:`` links.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # autodoc imports the package from this checkout

from requests_falcon_auth import __version__  # noqa: E402

project = "requests-falcon-auth"
author = "requests-falcon-auth maintainers"
copyright = "requests-falcon-auth maintainers"
release = __version__
version = __version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "requirements.txt"]

# The package's docstrings are Google style (Args:, Returns:, Raises:).
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False

autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_member_order = "bysource"
autodoc_class_signature = "separated"
autodoc_default_options = {
    "members": True,
    "show-inheritance": True,
}
autodoc_preserve_defaults = True

# MyST for benchmarks/results.md; its tables are GitHub-flavoured Markdown.
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3

html_theme = "furo"
html_title = f"requests-falcon-auth {__version__}"


# ```Title <label_>`_``: a link to the explicit target ``.. _label:`` before a README section.
_SECTION_LINK = re.compile(r"`([^`<]+?)\s*<([\w-]+)_>`_(?!_)")


def _section_links(app: Any, relative_path: Path, parent: str, content: list[str]) -> None:
    """README's links to its sections, as ``:ref:`` links (the target may be on another page)."""
    content[0] = _SECTION_LINK.sub(r":ref:`\1 <\2>`", content[0])


def _no_type_docstring(  # noqa: PLR0917 -- the signature of Sphinx's event
    app: Any, what: str, name: str, obj: object, options: Any, lines: list[str]
) -> None:
    """A constant (``DEFAULT_TIMEOUT``) has no docstring of its own: autodoc would show its
    type's ("Convert a string or number to a floating point number")."""
    own = type(obj).__doc__
    if what == "data" and own and lines and lines[0].strip() == own.strip().splitlines()[0]:
        lines.clear()


def _documented_elsewhere(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    """A link to one of the package's objects by another of its paths: a type hint names the
    module that defines it (``requests_falcon_auth.token.Token``), a docstring the package
    root (``requests_falcon_auth.CredentialsError``), and the reference documents it once,
    under one of them. Without this the name shows as italic text, not a link."""
    target = node.get("reftarget", "")
    if node.get("refdomain") != "py" or not target.startswith("requests_falcon_auth."):
        return None
    python = env.get_domain("py")
    tail = "." + target.rsplit(".", 1)[-1]
    found = [
        name
        for name in python.objects
        if name.startswith("requests_falcon_auth.") and name.endswith(tail) and name != target
    ]
    if len(found) != 1:
        return None  # internal (not documented), or ambiguous: left as text
    return python.resolve_xref(
        env, node["refdoc"], app.builder, node["reftype"], found[0], node, contnode
    )


def setup(app: Any) -> None:
    app.connect("include-read", _section_links)
    app.connect("autodoc-process-docstring", _no_type_docstring)
    app.connect("missing-reference", _documented_elsewhere)
