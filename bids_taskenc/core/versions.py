"""The software versions a run records (sidecars, logs) and a report names."""

from __future__ import annotations

import importlib.metadata as md
import platform
from collections.abc import Iterable

from ..__about__ import __version__

#: What computes or writes the participant level's numbers.
ANALYSIS_DISTRIBUTIONS = ("numpy", "scipy", "pandas", "torch", "nibabel", "nilearn", "pybids", "statsmodels", "pillow")


def distribution_versions(distributions: Iterable[str]) -> dict[str, str]:
    """``{name: version}`` of the installed distributions among ``distributions`` (absent ones left out)."""
    out: dict[str, str] = {}
    for dist in distributions:
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return out


def software_versions(distributions: Iterable[str] = ANALYSIS_DISTRIBUTIONS) -> dict[str, str]:
    """Python's, bids_taskenc's and the installed ``distributions``' versions."""
    return {"python": platform.python_version(), "bids_taskenc": __version__, **distribution_versions(distributions)}
