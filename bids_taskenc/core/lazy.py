"""Packages whose public names are imported from their modules on first use.

``bids_taskenc --help`` builds its parser from light modules of choices; a package that imported
its engines up front (torch, scipy, nibabel, pandas) would make every ``--help`` wait for them.
A package lists ``name -> module`` and gets its ``__getattr__`` and ``__dir__`` from here.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, public: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` whose names in ``public`` live in its submodules.

    >>> getattr_, dir_ = lazy_exports("bids_taskenc.core", {"fdr_bh": "fdr"})
    >>> getattr_("fdr_bh").__name__
    'fdr_bh'
    """

    def __getattr__(name: str) -> Any:
        if name in public:
            return getattr(importlib.import_module(f".{public[name]}", package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(public))

    return __getattr__, __dir__
