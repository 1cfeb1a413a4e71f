"""Every form in which the library put a secret on the wire, and their removal from text.

A server or proxy that echoes the request it got puts more than the literal client secret into
its answer: the form body carries the secret URL-encoded (``quote_plus``), the revoke call
carries ``base64(client_id:client_secret)`` in its Basic header and the token in its form.
Whatever of the server's text reaches an exception message or a log line passes through here,
cut to a bounded length.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from typing import Final
from urllib.parse import quote, quote_plus

__all__ = ["MAX_QUOTED", "REDACTED", "Redactor", "wire_forms"]

REDACTED: Final = "<redacted>"
# Falcon's messages are one line; a page of text from a server is an echo or an attack.
MAX_QUOTED: Final = 300


def wire_forms(value: str) -> set[str]:
    """``value`` as sent raw and in each URL encoding requests or a proxy may give it."""
    return {value, quote_plus(value), quote(value, safe=""), quote(value)}


class Redactor:
    """Replaces every wire form of the given secrets with ``<redacted>``.

    Percent-encodings match in either case (``%2F`` and ``%2f``); redacting a little more than
    needed is harmless.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        forms = sorted({form for value in secrets if value for form in wire_forms(value)}, key=len)
        self._secrets = tuple(value for value in secrets if value)
        self._pattern = (
            re.compile("|".join(re.escape(form) for form in reversed(forms)), re.IGNORECASE)
            if forms
            else None
        )

    @classmethod
    def for_credentials(cls, client_id: str, client_secret: str) -> Redactor:
        """The client secret and the Basic credential the revoke call sends."""
        basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode("ascii")
        return cls([client_secret, basic])

    def also(self, *secrets: str) -> Redactor:
        """This redactor, extended with more secrets (a token being revoked)."""
        return Redactor([*self._secrets, *secrets])

    def __call__(self, text: str, limit: int = MAX_QUOTED) -> str:
        """``text`` without any secret form, cut to ``limit`` characters."""
        clean = self._pattern.sub(REDACTED, text) if self._pattern is not None else text
        return clean if len(clean) <= limit else clean[: limit - 1] + "…"
