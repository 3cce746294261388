"""What the option modules share: the help text of a table of choices, and a setting's default.

Choices and defaults are defined once, in the settings (:mod:`bids_taskenc.workflow.settings`) and the torch-free
option modules of the layers (``encoding/options.py``, ``responses/options.py``, ``group/options.py``); the parser,
the settings' checks and the docs (generated from the parser) read them there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


def choices_help(registry: Mapping[str, str]) -> str:
    """``name = what it does; ...`` of a registry of choices."""
    return "; ".join(f"{k} = {v}" for k, v in registry.items())


def default_of(settings: type, name: str) -> Any:
    """The default of field ``name`` of a settings dataclass (``default_of(FitSettings, "cv_folds")`` -> 7): the
    parser's defaults are the settings' own, so a notebook and the command line start from the same values."""
    field = next(f for f in dataclasses.fields(settings) if f.name == name)
    if field.default is dataclasses.MISSING:
        raise ValueError(f"{settings.__name__}.{name} has no plain default")
    value = field.default
    return list(value) if isinstance(value, tuple) else value
