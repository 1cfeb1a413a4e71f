"""Footnotes more than one row refers to (the table numbers each once)."""

from __future__ import annotations

from typing import Final

__all__ = ["HTTPX_NO_TOKEN_LOGIC", "STATIC", "STATIC_NO_TOKEN_LOGIC"]

STATIC: Final = "static header"

STATIC_NO_TOKEN_LOGIC: Final = (
    "static-no-token-logic",
    "A static header is a token fetched by hand before the first request: it has no token "
    "logic to measure (it is the floor in rows 1 and 6).",
)

HTTPX_NO_TOKEN_LOGIC: Final = (
    "httpx-static-no-token-logic",
    "A static header is a token fetched by hand before the first request: it has no token "
    "logic to measure (rows 7, 9 and 10 show it as a reference).",
)
