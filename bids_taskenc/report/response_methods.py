"""The methods text's paragraph on the responses: the registered model's own text, filled with what the sidecars
record.

Each response model carries its paragraph (Jinja) in its registry entry
(:data:`bids_taskenc.responses.registry.REGISTRY`), so adding a model adds its methods text without touching
``boilerplate/methods.md.j2``. Reading the registry is the one import of ``responses`` in ``report/`` (a module of
names and texts, no computation; the import contract names it).
"""

from __future__ import annotations

from typing import Any

from bids_taskenc.report.render import boilerplate_dir, environment
from bids_taskenc.responses.registry import REGISTRY, UNREGISTERED_METHODS


def response_methods(facts: dict[str, Any]) -> str:
    """The response paragraph for ``facts`` (``response_model``, ``repeats``, ``confounds``, ``response_trs``,
    ``response_zscore``, ``lsa_zscore``, ...: the response facts of the methods context); a model no longer (or
    not yet) registered gets a generic sentence that names it."""
    name = facts.get("response_model")
    source = REGISTRY[name].methods if isinstance(name, str) and name in REGISTRY else UNREGISTERED_METHODS
    return environment(boilerplate_dir(), autoescape=False).from_string(source).render(**facts)
