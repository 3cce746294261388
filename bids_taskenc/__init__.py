"""bids_taskenc: voxelwise encoding models of computer-vision task representations.

A BIDS-App after Wang, Tarr & Wehbe, "Neural Taskonomy" (NeurIPS 2019).
See ``docs/architecture.md`` for the layers and data contracts.
"""

from .__about__ import __version__

__all__ = ["__version__"]
