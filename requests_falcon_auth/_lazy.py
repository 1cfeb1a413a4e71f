"""Exports imported on first use (PEP 562), so that importing a package costs nothing more.

The pytest plugin is a submodule: pytest loads it in every project that installs this library,
which imports the package roots. They export their names through :func:`exports` instead of
importing requests, urllib3 and the emulator up front.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["exports"]


def exports(
    package: str, homes: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's ``__getattr__`` and ``__dir__`` for names kept in its submodules.

    Args:
        package: the package's ``__name__``.
        homes: exported name -> the submodule it lives in (the name itself for a module).
    """
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(f"{package}.{home}")
        value = module if home == name else getattr(module, name)
        namespace[name] = value  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(homes))

    return __getattr__, __dir__
