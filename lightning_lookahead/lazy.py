"""Package names imported on first use (PEP 562 module ``__getattr__``), so importing a package for one light
submodule does not pull in the heavy ones (torch, fastapi, the HTTP client) its public names live in."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """The ``__getattr__`` of ``package``: ``exports`` maps each public name to the module that defines it (a
    dotted path, or a submodule name relative to ``package``)."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        where = exports[name]
        return getattr(importlib.import_module(where if "." in where else f"{package}.{where}"), name)

    return __getattr__
