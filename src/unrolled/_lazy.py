"""Packages whose public names are imported from their modules on first use (PEP 562).

``import unrolled.nn._validation`` runs ``unrolled/nn/__init__.py`` first; if that imported every cell,
loss and layer, ``unrolled predict`` would pay for all of them to run one forward pass.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (``import unrolled`` stays cheap)
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str],
                 namespace: dict[str, Any]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``: ``exports`` maps each public name to the module
    (relative to ``package``) that defines it; ``namespace`` is the package's ``globals()``, where a name is
    stored on first use so that later accesses skip ``__getattr__``."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(namespace.get("__all__", ())))

    return __getattr__, __dir__
