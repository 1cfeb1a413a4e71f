"""Sphinx configuration: the documentation site of requests-falcon-auth.

Build it (warnings are errors) from the repository root::

    python -m sphinx -W --keep-going -b html docs "$(mktemp -d)"

Prose pages include README.rst's sections (between ``.. docs-start: NAME`` and
``.. docs-end: NAME`` comments) and benchmarks/results.md, so neither is copied here.
"""

from __future__ import annotations

import sys
from pathlib import Path

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
