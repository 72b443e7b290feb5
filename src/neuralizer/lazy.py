"""Names a package imports on first use (PEP 562), so that importing it stays cheap: the
``neuralizer`` commands check a user's files and fail within a second, before torch is imported.
Ground floor: imports no other part of neuralizer."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_names(package: str, names: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports each of ``names`` (name -> module
    that defines it) when first asked for."""

    def __getattr__(name: str) -> Any:
        if name in names:
            return getattr(importlib.import_module(names[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
