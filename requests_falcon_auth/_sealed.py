"""The sealed format tokens are kept in outside a process: one format for every shared store.

A shared store (Redis, a file) is read by other programs and other users' backups, so what it
holds must give nothing away: not the token, not the client id. One value::

    v1:<fp>:<sealed>                     ASCII
    fp     = base64(HMAC-SHA256(k_fp, access_token))
    sealed = base64(nonce[12] || AES-256-GCM(k_enc, nonce, json, ad))
    json   = {"access_token", "token_type", "expires_in", "region", "base_url", "expiry"}
    ad     = "requests-falcon-auth/<store>/v1" NUL location NUL fp
    k_enc, k_fp = HKDF-SHA256(CacheKey.secret, info="requests-falcon-auth <store> v1 aead"
                                                  / "... fingerprint")

``CacheKey.secret`` is derived from the client secret, so only holders of the secret can open
or forge a value. ``<store>`` names the kind of store (``redis``, ``file``): keys and associated
data differ between kinds, so a value copied from one kind of store to another does not open.
``location`` is where the store keeps the value (the Redis key name, the file's cache-key
name): a value moved to another location does not open either. The fingerprint is outside the
ciphertext, so a store can delete exactly one token without the keys (Redis's Lua script, a
prefix comparison), yet it is authenticated, and must be the fingerprint of the token inside.

``expiry`` is wall-clock time: ``Token.issued_at`` is a reading of a monotonic clock, which
means nothing in another process or on another host; a reader rebuilds an equivalent
``issued_at`` on its own clock (:meth:`Sealed.token`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import os
import re
from typing import Any, Final, NamedTuple

try:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
except ImportError as exc:  # a dependency of the package: only a broken install lacks it
    raise ImportError(
        f"requests-falcon-auth needs the cryptography package to keep tokens outside a process "
        f"({exc.name} is missing): pip install 'cryptography>=41'"
    ) from exc

from .cache import CacheKey
from .token import Token

__all__ = ["MAX_SIZE", "VERSION", "Sealed", "Sealer", "Sealers", "Unreadable"]

VERSION: Final = "v1"
# The most a stored value may be: a sealed token is about 600 bytes, and a store reads no more
# than this (the file store reads this much at most, the Redis store asks the size first), so
# a value planted to exhaust a reader's memory costs it nothing.
MAX_SIZE: Final = 64 * 1024
_NONCE_SIZE: Final = 12
_STORE_NAME: Final = re.compile(r"[a-z][a-z0-9-]*")


class Unreadable(Exception):
    """A stored value that does not decrypt, verify or parse (the message says which, never
    what the value holds). Stores treat it as a miss; it never reaches their callers."""


class Sealed(NamedTuple):
    """What an opened value holds. ``expiry`` is wall-clock time (seconds since the epoch).

    Internal to the stores: opened and turned into a Token at once, never handed on."""

    access_token: str
    token_type: str
    expires_in: int
    region: str | None
    base_url: str
    expiry: float

    def __repr__(self) -> str:
        return (
            f"Sealed(token_type={self.token_type!r}, expires_in={self.expires_in}, "
            f"region={self.region!r}, base_url={self.base_url!r}, expiry={self.expiry})"
        )

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("A sealed value, once opened, holds a live token; it is not pickled.")

    def token(self, now: float, wall_now: float) -> Token | None:
        """The token on a monotonic clock reading ``now`` while the wall clock reads
        ``wall_now``; None once the stored expiry has passed.

        The life left is at most ``expires_in``: a reader whose wall clock is behind the
        writer's would otherwise see more life than Falcon granted (an hour behind: a 1,799 s
        token with 5,399 s left), keep the token past its real expiry and renew it late.
        """
        remaining = min(self.expiry - wall_now, self.expires_in)
        if remaining <= 0:
            return None
        issued_at = now + remaining - self.expires_in
        fields = (self.access_token, self.token_type, self.expires_in, self.region, self.base_url)
        return Token(*fields, issued_at)


class Sealer:
    """Seals and opens one credential set's tokens for one kind of store.

    Args:
        store: the kind of store (``"redis"``, ``"file"``): it separates keys and associated
            data, so a value moved between kinds of store is unreadable.
        secret: ``CacheKey.secret``, the key material derived from the client secret.
    """

    def __init__(self, store: str, secret: bytes) -> None:
        if not _STORE_NAME.fullmatch(store):
            raise ValueError(f"store must be a short lowercase name, got {store!r}")
        self.store = store
        self._label = f"requests-falcon-auth/{store}/{VERSION}".encode()
        self._aead = AESGCM(_derive(store, secret, b"aead"))
        self._fingerprint_key = _derive(store, secret, b"fingerprint")

    def __repr__(self) -> str:
        return f"Sealer(store={self.store!r}, keys=<hidden>)"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("A Sealer holds keys derived from a client secret; it is not pickled.")

    def fingerprint(self, access_token: str) -> str:
        """The token's fingerprint: names one token without revealing it."""
        digest = hmac.new(self._fingerprint_key, access_token.encode(), hashlib.sha256).digest()
        return base64.b64encode(digest).decode("ascii")

    def prefix(self, access_token: str) -> str:
        """How every value holding ``access_token`` starts (``v1:<fp>:``), for stores that
        compare-and-delete without opening values."""
        return f"{VERSION}:{self.fingerprint(access_token)}:"

    def seal(self, token: Token, *, location: str, expiry: float) -> str:
        """``token`` as a value to keep at ``location``, good until the wall-clock ``expiry``."""
        fingerprint = self.fingerprint(token.access_token)
        payload = json.dumps(
            {
                "access_token": token.access_token,
                "token_type": token.token_type,
                "expires_in": token.expires_in,
                "region": token.region,
                "base_url": token.base_url,
                "expiry": expiry,
            },
            separators=(",", ":"),
        ).encode()
        nonce = os.urandom(_NONCE_SIZE)
        sealed = nonce + self._aead.encrypt(nonce, payload, self._ad(location, fingerprint))
        return f"{VERSION}:{fingerprint}:{base64.b64encode(sealed).decode('ascii')}"

    def open(self, raw: bytes | str, *, location: str) -> Sealed:
        """What the value kept at ``location`` holds.

        Raises:
            Unreadable: not this format, larger than ``MAX_SIZE``, another secret's or another
                location's value, tampered with, or fields missing (the value's expiry is not
                checked here).
        """
        if len(raw) > MAX_SIZE:
            raise Unreadable("too large")
        fields, fingerprint = self._decrypt(raw, location)
        access_token = _field(fields, "access_token", str)
        # The fingerprint is authenticated (associated data); it must also be this token's.
        if not hmac.compare_digest(self.fingerprint(access_token), fingerprint):
            raise Unreadable("fingerprint mismatch")
        expires_in = _field(fields, "expires_in", int)
        expiry = float(_field(fields, "expiry", (int, float)))
        if expires_in <= 0 or not math.isfinite(expiry):
            raise Unreadable("expiry out of range")
        region = fields.get("region")
        if region is not None and not isinstance(region, str):
            raise Unreadable("field region is mistyped")
        token_type = _field(fields, "token_type", str)
        base_url = _field(fields, "base_url", str)
        return Sealed(access_token, token_type, expires_in, region, base_url, expiry)

    def _decrypt(self, raw: bytes | str, location: str) -> tuple[dict[str, Any], str]:
        try:
            text = raw.decode("ascii") if isinstance(raw, bytes) else raw
            version, fingerprint, sealed_b64 = text.split(":")
            if version != VERSION:
                raise Unreadable(f"unknown format {version[:8]!r}")
            sealed = base64.b64decode(sealed_b64, validate=True)
            plain = self._aead.decrypt(
                sealed[:_NONCE_SIZE], sealed[_NONCE_SIZE:], self._ad(location, fingerprint)
            )
            fields = json.loads(plain)
        except (ValueError, binascii.Error) as exc:  # bad ASCII, shape, base64 or JSON
            raise Unreadable(type(exc).__name__) from None
        except InvalidTag:
            raise Unreadable("authentication failed") from None
        if not isinstance(fields, dict):
            raise Unreadable("not an object")
        return fields, fingerprint

    def _ad(self, location: str, fingerprint: str) -> bytes:
        return b"\0".join([self._label, location.encode(), fingerprint.encode()])


class Sealers:
    """One store's sealers, one per CacheKey, derived once: HKDF on every request would cost.

    Args:
        store: the kind of store (see :class:`Sealer`).
    """

    def __init__(self, store: str) -> None:
        if not _STORE_NAME.fullmatch(store):  # refused now, not at the first token
            raise ValueError(f"store must be a short lowercase name, got {store!r}")
        self.store = store
        self._sealers: dict[CacheKey, Sealer] = {}

    def __repr__(self) -> str:
        return f"Sealers(store={self.store!r}, keys={len(self._sealers)})"

    def of(self, key: CacheKey) -> Sealer:
        """The sealer of ``key``'s tokens. No lock: two threads may both derive the keys once
        (setdefault keeps one), and a child forked mid-derivation inherits no held lock."""
        sealer = self._sealers.get(key)
        if sealer is None:
            sealer = self._sealers.setdefault(key, Sealer(self.store, key.secret))
        return sealer


def _derive(store: str, secret: bytes, purpose: bytes) -> bytes:
    """A 256-bit key for one purpose, from the CacheKey's secret-derived material."""
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=f"requests-falcon-auth {store} {VERSION} ".encode() + purpose,
    )
    return hkdf.derive(secret)


def _field(fields: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = fields.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise Unreadable(f"field {name} is missing or mistyped")
    return value
