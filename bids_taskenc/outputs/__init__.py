"""BIDS-derivative names and writers; :func:`layout` opens an output folder with pybids (``stat`` known)."""

from .pybids import PYBIDS_CONFIG, layout

__all__ = ["PYBIDS_CONFIG", "layout"]
