"""Registries: one table per kind of plug-in (CV solvers, response models, feature families, map statistics).

Adding a CV solver, a response model, a feature family or a map statistic is one new module and one
``REGISTRY.register(Entry(...))`` line: the command line's choices, the settings' checks, the docs, the sidecars,
the methods text and the citations all read the registry instead of restating the names. The pattern is
himalaya's solver dictionaries and nilearn's estimator checks, with two rules of ours:

* An entry names its implementation by import path (``"bids_taskenc.encoding.banded.holdout:holdout_cv"``) and
  :func:`resolve` imports it on first use, so that a registry of choices stays importable by ``bids_taskenc
  --help`` without torch, scipy or nibabel (``tests/app/test_cli_startup.py``).
* An unknown name is a :class:`UnknownChoiceError` (a ``ValueError``) that lists the choices.

Each layer defines its own entry dataclass (a ``name`` plus what it needs: a description for ``--help`` and the
docs, a methods sentence, citation keys, the implementation's import path).
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator
from typing import Any, Generic, Protocol, TypeVar


class Named(Protocol):
    """What every registry entry has: the name users type (``--cv-solver hold-out``)."""

    @property
    def name(self) -> str: ...


E = TypeVar("E", bound=Named)


class UnknownChoiceError(ValueError):
    """A name that is not in a registry; the message lists the registered names."""


class Registry(Generic[E]):
    """Entries of one kind by name, in registration order (the order of ``--help`` and the docs).

    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Model:
    ...     name: str
    >>> models = Registry[Model]("response model")
    >>> _ = models.register(Model("travg"))
    >>> models.names(), models["travg"]
    (('travg',), Model(name='travg'))
    >>> models["glm"]
    Traceback (most recent call last):
    ...
    bids_taskenc.core.registry.UnknownChoiceError: unknown response model 'glm'; choose one of: travg
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, E] = {}

    def register(self, entry: E, *, replace: bool = False) -> E:
        """Add ``entry`` under ``entry.name`` (an error if the name is taken, unless ``replace``)."""
        if entry.name in self._entries and not replace:
            raise ValueError(f"a {self.kind} named {entry.name!r} is already registered")
        self._entries[entry.name] = entry
        return entry

    def unregister(self, name: str) -> E:
        """Remove and return the entry ``name``."""
        return self._entries.pop(self[name].name)

    @contextlib.contextmanager
    def temporarily(self, entry: E) -> Iterator[E]:
        """Register ``entry`` for the length of a ``with`` block (tests that plug in a toy entry)."""
        self.register(entry)
        try:
            yield entry
        finally:
            self._entries.pop(entry.name, None)

    def __getitem__(self, name: str) -> E:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownChoiceError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(self._entries)}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[E]:
        return iter(list(self._entries.values()))

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> tuple[str, ...]:
        """The registered names, in registration order (the parser's ``choices``)."""
        return tuple(self._entries)


def resolve(import_path: str) -> Callable[..., Any]:
    """The object at ``"package.module:attribute"``, imported on first use.

    >>> resolve("bids_taskenc.core.fdr:fdr_bh").__name__
    'fdr_bh'
    """
    module, _, attribute = import_path.partition(":")
    if not module or not attribute:
        raise ValueError(f"expected 'package.module:attribute', got {import_path!r}")
    return getattr(importlib.import_module(module), attribute)
