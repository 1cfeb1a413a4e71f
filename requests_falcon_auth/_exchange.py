"""One bounded form POST: a deadline for the whole exchange and a cap on what is read.

requests' ``timeout`` bounds each socket operation, not the call: a server that trickles a byte
every half second holds a ``timeout=(1, 2)`` call, and every thread waiting on it, for as long
as it likes. ``response.content`` reads whatever it is sent, and inflates it: a 1 MB gzip bomb
becomes a gigabyte. A Falcon token answer is about 1.3 KB. So the exchange runs on a short-lived
daemon thread that the caller waits for only until the deadline, and the body is read raw, in
small pieces, and inflated here under the same cap.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal, cast

import requests
from requests.auth import AuthBase
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import ReadTimeoutError

__all__ = ["MAX_ANSWER_BYTES", "Answer", "DeadlineExceeded", "UnusableAnswer", "post_form"]

# Twenty-five times a real token answer; error envelopes are smaller still.
MAX_ANSWER_BYTES: Final = 32 * 1024
_CHUNK: Final = 4096
_INFLATERS: Final = {
    "gzip": 16 + zlib.MAX_WBITS,
    "x-gzip": 16 + zlib.MAX_WBITS,
    "deflate": zlib.MAX_WBITS,
}


class DeadlineExceeded(Exception):
    """The exchange did not finish before its deadline."""


class UnusableAnswer(ValueError):
    """The answer cannot be read: an unknown or corrupt content encoding."""


@dataclass(frozen=True)
class Answer:
    """A token-service answer, read within the cap.

    Attributes:
        url: where the request went.
        status: the HTTP status.
        headers: the answer's headers (case-insensitive).
        body: the body, inflated; at most ``MAX_ANSWER_BYTES``.
        oversized: the server sent more than the cap (``body`` holds the first part).
    """

    url: str
    status: int
    headers: Mapping[str, str]
    body: bytes
    oversized: bool

    def get_redirect_location(self) -> Literal[False]:
        """For urllib3's ``Retry``, which asks: redirects are the token client's business."""
        return False

    def getheader(self, name: str, default: str | None = None) -> str | None:
        """For urllib3 1.26's ``Retry``, which reads ``Retry-After`` this way."""
        return self.headers.get(name, default)


class _SessionAuthOff(AuthBase):
    """Keeps a caller's ``session.auth`` (maybe our own FalconAuth) off the OAuth2 calls."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        return r


@dataclass(frozen=True)
class Request:
    """What to POST, and how: the form, headers, per-read timeout and proxy settings."""

    url: str
    form: Mapping[str, str]
    headers: Mapping[str, str]
    timeout: tuple[float, float]
    proxies: Mapping[str, str | None] | None = None


def post_form(session: requests.Session, request: Request, deadline: float) -> Answer:
    """POSTs ``request`` through ``session`` and returns the answer, or raises by ``deadline``.

    Args:
        session: the session to send through (its adapters, proxies, verify and certs apply).
        request: what to send.
        deadline: a ``time.monotonic()`` reading by which the whole exchange must be over.

    Raises:
        DeadlineExceeded: no complete answer by the deadline (the exchange is abandoned: the
            thread stops reading and closes the connection as soon as the socket lets it).
        UnusableAnswer: an encoding that cannot be inflated.
        requests.RequestException: as ``session.post``; a connection broken or timed out while
            the body was read is a ``ConnectionError`` or ``ReadTimeout`` like one before it.
    """
    exchange = _Exchange(session, request)
    thread = threading.Thread(target=exchange.run, name="falcon-auth-token-call", daemon=True)
    thread.start()
    if not exchange.done.wait(max(0.0, deadline - time.monotonic())):
        exchange.abandoned.set()
        raise DeadlineExceeded
    if exchange.error is not None:
        raise exchange.error
    assert exchange.answer is not None
    return exchange.answer


class _Exchange:
    """One exchange on its own thread; the caller reads the outcome after ``done``."""

    def __init__(self, session: requests.Session, request: Request) -> None:
        self.session = session
        self.request = request
        self.done = threading.Event()
        self.abandoned = threading.Event()
        self.answer: Answer | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.answer = self._exchange()
        except BaseException as exc:  # noqa: BLE001 -- handed to the waiting caller as it is
            self.error = exc
        finally:
            self.done.set()

    def _exchange(self) -> Answer:
        request = self.request
        response = self.session.post(
            request.url,
            data=request.form,
            headers=request.headers,
            timeout=request.timeout,
            allow_redirects=False,
            auth=_SessionAuthOff(),
            proxies=cast("dict[str, str] | None", request.proxies),  # None values are allowed
            stream=True,
            # A session's own CA bundle must win over REQUESTS_CA_BUNDLE, which requests
            # would otherwise let override it (psf/requests#3829).
            verify=self.session.verify,
        )
        complete = False
        try:
            raw, complete = self._read_raw(response)
            body, oversized = _inflate(raw, response.headers.get("Content-Encoding", ""))
            return Answer(
                request.url,
                response.status_code,
                response.headers,
                body,
                oversized or not complete,
            )
        finally:
            if complete:
                response.raw.release_conn()  # read to the end: the connection can be reused
            else:
                response.close()

    def _read_raw(self, response: requests.Response) -> tuple[bytes, bool]:
        """Up to ``MAX_ANSWER_BYTES`` of the body as sent; True when that was all of it."""
        chunks: list[bytes] = []
        size = 0
        try:
            while size <= MAX_ANSWER_BYTES and not self.abandoned.is_set():
                chunk = response.raw.read(_CHUNK, decode_content=False)
                if not chunk:
                    return b"".join(chunks), True
                chunks.append(chunk)
                size += len(chunk)
        except ReadTimeoutError as exc:
            raise requests.exceptions.ReadTimeout(exc, request=response.request) from exc
        except (Urllib3Error, OSError) as exc:
            # A reset mid-body is the same transient failure as a reset before the answer.
            raise requests.exceptions.ConnectionError(exc, request=response.request) from exc
        return b"".join(chunks)[:MAX_ANSWER_BYTES], False


def _inflate(raw: bytes, encoding: str) -> tuple[bytes, bool]:
    """The body inflated under the cap; True when it inflates past the cap."""
    coding = encoding.strip().lower()
    if coding in ("", "identity"):
        return raw, False
    wbits = _INFLATERS.get(coding)
    if wbits is None:
        raise UnusableAnswer(f"unsupported content encoding {coding[:20]!r}")
    try:
        body = zlib.decompressobj(wbits).decompress(raw, MAX_ANSWER_BYTES + 1)
    except zlib.error:
        if coding != "deflate":
            raise UnusableAnswer("corrupt gzip body") from None
        try:  # "deflate" is raw deflate to some servers (RFC 9110 section 8.4.1.2 notes it)
            body = zlib.decompressobj(-zlib.MAX_WBITS).decompress(raw, MAX_ANSWER_BYTES + 1)
        except zlib.error:
            raise UnusableAnswer("corrupt deflate body") from None
    return body[:MAX_ANSWER_BYTES], len(body) > MAX_ANSWER_BYTES
