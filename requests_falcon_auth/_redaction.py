"""Every form in which the library put a secret on the wire, and their removal from text.

A server or proxy that echoes the request it got puts more than the literal client secret into
its answer: the form body carries the secret URL-encoded (``quote_plus``), the revoke call
carries ``base64(client_id:client_secret)`` in its Basic header and the token in its form.
Whatever of the server's text reaches an exception message or a log line passes through here,
cut to a bounded length; the library's own sentences around it never do.

A form is removed where it stands as itself, not where its characters happen to run inside a
longer word: with a placeholder secret ``e``, ``access denied`` is left as the server wrote it,
while ``client_secret=e`` loses the ``e``.
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

_WORD: Final = re.compile(r"\w")
_PERCENT_ESCAPE: Final = re.compile(r"(%[0-9A-Fa-f]{2})")
# Where a form begins with a word character, the one before it must not be one, unless it ends
# an escape: an echo that re-encodes "client_secret=" as "client_secret%3D" or as JSON's
# "\u003d" puts a hex digit right before the secret.
_LEFT_EDGE: Final = (
    r"(?:(?<!\w)|(?<=%[0-9A-Fa-f]{2})|(?<=\\u[0-9A-Fa-f]{4})|(?<=\\x[0-9A-Fa-f]{2})"
    r"|(?<=\\[nrt]))"
)
_RIGHT_EDGE: Final = r"(?!\w)"


def wire_forms(value: str) -> set[str]:
    """``value`` as sent raw and in each URL encoding requests or a proxy may give it."""
    return {value, quote_plus(value), quote(value, safe=""), quote(value)}


def _standing(form: str) -> str:
    """A pattern for ``form`` where it is not part of a longer word; percent-escapes in any case."""
    body = "".join(
        f"(?i:{re.escape(piece)})" if _PERCENT_ESCAPE.fullmatch(piece) else re.escape(piece)
        for piece in _PERCENT_ESCAPE.split(form)
        if piece
    )
    before = _LEFT_EDGE if _WORD.match(form[0]) else ""
    after = _RIGHT_EDGE if _WORD.match(form[-1]) else ""
    return f"{before}{body}{after}"


class Redactor:
    """Replaces every wire form of the given secrets with ``<redacted>``.

    A form is matched as sent (percent-escapes in either case, ``%2F`` and ``%2f``) and only
    where it is not glued to letters, digits or underscores that would make it part of a longer
    word: a short placeholder secret must not eat letters out of the server's words.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = tuple(value for value in secrets if value)
        forms = sorted({form for value in self._secrets for form in wire_forms(value)}, key=len)
        # Longest first: where one form contains another, the whole of it goes.
        self._pattern = (
            re.compile("|".join(_standing(form) for form in reversed(forms))) if forms else None
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
