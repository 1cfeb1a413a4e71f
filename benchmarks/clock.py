"""A clock shared by every process of a row, advanced only by the row itself.

The fleet row counts token requests per token lifetime over several lifetimes. Waiting 30
minutes per lifetime is out of the question and a 4-second token would make the row about
timing, so the emulator, each worker's FalconAuth and RedisTokenCache all read one clock that
the row steps forward between phases: Falcon's real 1799 s tokens and 120 s renew window, no
sleeping. The value lives in an 8-byte file mapped into each process; pickling carries only
the path. It is the cross-process counterpart of ``requests_falcon_auth.testing.ManualClock``
(same ``clock()`` and ``advance(seconds)``), which keeps its reading in one process's memory.
"""

from __future__ import annotations

import mmap
import os
import struct
import tempfile
from typing import Any, Final

__all__ = ["SharedClock"]

_FORMAT: Final = "d"
_SIZE: Final = struct.calcsize(_FORMAT)
_START: Final = 1000.0
# RedisTokenCache stores expiries in wall-clock time; any offset agreed by every process works.
_WALL_OFFSET: Final = 1_700_000_000.0


class SharedClock:
    """``clock()`` reads the shared monotonic time; ``clock.wall()`` the matching wall time.

    Use :meth:`create` in the row (which owns and removes the file), pass the object to other
    processes, and :meth:`advance` it from the row only.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._map: mmap.mmap | None = None

    @classmethod
    def create(cls) -> SharedClock:
        """A new clock reading 1000.0, backed by a fresh temporary file."""
        fd, path = tempfile.mkstemp(prefix="falcon-bench-clock-")
        with os.fdopen(fd, "wb") as file:
            file.write(struct.pack(_FORMAT, _START))
        return cls(path)

    def _mapped(self) -> mmap.mmap:
        if self._map is None:
            with open(self.path, "r+b") as file:
                self._map = mmap.mmap(file.fileno(), _SIZE)
        return self._map

    def __call__(self) -> float:
        value: float = struct.unpack_from(_FORMAT, self._mapped(), 0)[0]
        return value

    def wall(self) -> float:
        """The wall-clock reading that goes with :meth:`__call__` (for RedisTokenCache)."""
        return self() + _WALL_OFFSET

    def advance(self, seconds: float) -> None:
        """Moves every process's clock forward by ``seconds``."""
        struct.pack_into(_FORMAT, self._mapped(), 0, self() + seconds)

    def remove(self) -> None:
        """Unmaps and deletes the backing file (the creating row's job)."""
        self.close()
        os.unlink(self.path)

    def close(self) -> None:
        """Unmaps the file in this process."""
        if self._map is not None:
            self._map.close()
            self._map = None

    def __reduce__(self) -> tuple[Any, ...]:
        return (SharedClock, (self.path,))

    def __repr__(self) -> str:
        return f"SharedClock({self.path!r})"
