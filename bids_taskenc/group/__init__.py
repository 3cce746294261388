"""Group level: task x task similarity, tree, graph, Taskonomy comparison, group maps.

Reads participant outputs only (never refits). Entry point:
:func:`bids_taskenc.group.run.run_group`.
"""

from bids_taskenc.group.inputs import GroupInputError
from bids_taskenc.group.run import run_group

__all__ = ["GroupInputError", "run_group"]
