"""Falcon's sample store (Sample Uploads): files uploaded, downloaded by SHA-256, deleted.

``POST /samples/entities/samples/v3`` takes the file as falconpy's service class sends it (a
``multipart/form-data`` form: the file in ``sample``, its name in ``file_name``) or as its Uber
class does (the raw bytes as the body, ``file_name`` in the query), and answers 200 with
``[{"sha256", "file_name"}]``. ``GET ...?ids=<sha256>`` answers the bytes
(``application/octet-stream``), ``DELETE`` removes them; an id not stored gets a 404 in
Falcon's error envelope. v2 of the three operations behaves the same. Samples belong to the
CID that uploaded them, as on Falcon: a member CID does not see its parent's.

Memory is bounded: the store keeps at most ``capacity`` bytes of samples (64 MiB unless told
otherwise) and, to take a new one, forgets the oldest uploads first; a single sample larger
than the whole capacity is refused with 413. A test that uploads more than the capacity and
reads the first sample back gets the 404 of a sample Falcon never had.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from typing import Final, NamedTuple

from ._api_call import OCTET_STREAM, ApiAnswer, ApiCall, error_entry, refuse
from ._checks import whole

__all__ = ["DEFAULT_CAPACITY", "POWERED_BY", "SampleStore", "StoredSample"]

DEFAULT_CAPACITY: Final = 64 * 1024 * 1024  # the emulator's request bodies are capped there too
POWERED_BY: Final = "samplestore"  # the emulator's name for the service (not recorded)
_TRUE: Final = frozenset({"1", "t", "T", "TRUE", "true", "True"})  # Go's strconv.ParseBool
# One ``; name=value`` of a header (RFC 9110 section 5.6.6), the value a token or quoted.
_PARAMETER: Final = re.compile(r';\s*([^=;\s]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]*)')


class StoredSample(NamedTuple):
    """One uploaded sample."""

    sha256: str
    file_name: str
    data: bytes


class _Form(NamedTuple):
    fields: dict[str, str]
    files: dict[str, bytes]


class SampleStore:
    """Uploaded samples by (CID, SHA-256), oldest first. Thread-safe: one lock of its own.

    Args:
        capacity: the most bytes of samples kept at once (see the module's docstring).

    Raises:
        ValueError: a capacity that is not a whole number of at least 1.
    """

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = whole(capacity, "capacity", 1, meaning="a whole number of at least 1")
        self._lock = threading.Lock()
        self._samples: OrderedDict[tuple[str, str], StoredSample] = OrderedDict()
        self._size = 0

    @property
    def size(self) -> int:
        """The bytes of samples kept now."""
        with self._lock:
            return self._size

    def put(self, cid: str, file_name: str, data: bytes) -> StoredSample | None:
        """Keeps ``data`` for ``cid`` (forgetting the oldest samples to make room), or returns
        None when it is larger than the whole capacity."""
        if len(data) > self.capacity:
            return None
        sample = StoredSample(hashlib.sha256(data).hexdigest(), file_name, data)
        with self._lock:
            self._pop((cid, sample.sha256))
            while self._size + len(data) > self.capacity:
                _, oldest = self._samples.popitem(last=False)
                self._size -= len(oldest.data)
            self._samples[(cid, sample.sha256)] = sample
            self._size += len(data)
        return sample

    def get(self, cid: str, sha256: str) -> StoredSample | None:
        """The sample ``sha256`` of ``cid``, or None."""
        with self._lock:
            return self._samples.get((cid, sha256.lower()))

    def delete(self, cid: str, sha256: str) -> bool:
        """Forgets the sample ``sha256`` of ``cid``; False when there was none."""
        with self._lock:
            return self._pop((cid, sha256.lower())) is not None

    def _pop(self, key: tuple[str, str]) -> StoredSample | None:
        removed = self._samples.pop(key, None)
        if removed is not None:
            self._size -= len(removed.data)
        return removed

    # -- the operations ----------------------------------------------------------------------

    def upload(self, call: ApiCall) -> ApiAnswer:
        """``UploadSampleV3``: stores the file, answers its SHA-256 and name."""
        content_type = call.headers.get("Content-Type", "")
        if content_type.partition(";")[0].strip().lower() == "multipart/form-data":
            form = _parse_form(content_type, call.body)
            if form is None:
                return refuse("the multipart/form-data body could not be read")
            data = form.files.get("sample", form.files.get("file"))
            file_name = form.fields.get("file_name") or call.param("file_name")
        else:
            data, file_name = call.body, call.param("file_name")
        if not file_name:
            return refuse("file_name is required")
        if not data:
            return refuse("sample is required: send the file's bytes")
        sample = self.put(call.cid, file_name, data)
        if sample is None:
            message = f"the sample is larger than the emulator keeps ({self.capacity} bytes)"
            return ApiAnswer(413, errors=[error_entry(413, message)])
        return ApiAnswer(200, [{"sha256": sample.sha256, "file_name": sample.file_name}])

    def download(self, call: ApiCall) -> ApiAnswer:
        """``GetSampleV3``: the bytes of the sample ``ids`` names."""
        ident = call.param("ids") or ""
        if not ident:
            return refuse("ids is required")
        if call.param("password_protected") in _TRUE:
            # Falcon zips the sample with the password "infected"; the standard library
            # cannot write an encrypted zip, so the emulator says so rather than send a plain one.
            message = "the emulator does not build password-protected archives"
            return ApiAnswer(501, errors=[error_entry(501, message)])
        sample = self.get(call.cid, ident)
        if sample is None:
            return _not_found(ident)
        return ApiAnswer(200, body=sample.data, content_type=OCTET_STREAM)

    def remove(self, call: ApiCall) -> ApiAnswer:
        """``DeleteSampleV3``: forgets the sample ``ids`` names."""
        ident = call.param("ids") or ""
        if not ident:
            return refuse("ids is required")
        if not self.delete(call.cid, ident):
            return _not_found(ident)
        return ApiAnswer(200, [ident.lower()])


def _not_found(ident: str) -> ApiAnswer:
    return ApiAnswer(404, errors=[error_entry(404, f"ids {ident!r} not found", id=ident)])


def _parse_form(content_type: str, body: bytes) -> _Form | None:
    """The text fields and files of a ``multipart/form-data`` body (RFC 7578), or None when
    it is not one. A part with a ``filename`` is a file; the first of a repeated name wins."""
    boundary = _parameter(content_type, "boundary")
    if not boundary:
        return None
    delimiter = b"--" + boundary.encode("latin-1")
    sections = body.split(delimiter)
    if len(sections) < 3 or not sections[-1].startswith(b"--"):
        return None  # no closing delimiter
    form = _Form({}, {})
    for section in sections[1:-1]:
        if not section.startswith(b"\r\n") or not section.endswith(b"\r\n"):
            return None
        head, separator, content = section[2:-2].partition(b"\r\n\r\n")
        if not separator:
            return None
        disposition = next(
            (
                line.split(":", 1)[1]
                for line in head.decode("latin-1").split("\r\n")
                if line.lower().startswith("content-disposition:")
            ),
            "",
        )
        name = _parameter(disposition, "name")
        if name is None:
            return None
        if _parameter(disposition, "filename") is not None:
            form.files.setdefault(name, content)
        else:
            form.fields.setdefault(name, content.decode("utf-8", "replace"))
    return form


def _parameter(header: str, name: str) -> str | None:
    """The value of parameter ``name`` in a header such as ``form-data; name="x"``."""
    for found in _PARAMETER.finditer(header):
        if found.group(1).lower() == name:
            value = found.group(2)
            return re.sub(r"\\(.)", r"\1", value[1:-1]) if value.startswith('"') else value
    return None
