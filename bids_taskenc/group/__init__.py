"""Group level: task x task similarity, tree, graph, Taskonomy comparison, group maps.

Reads participant outputs only (never refits), in three steps that a notebook can call one by one:
:func:`~bids_taskenc.group.inputs.read_group_inputs` (the participants' maps),
:func:`~bids_taskenc.group.run.compute_group` (a :class:`~bids_taskenc.group.result.GroupResult`, no files) and
:func:`~bids_taskenc.group.write.write_group_results` (the derivatives, staged).
:func:`bids_taskenc.workflow.group.run_group` runs all three from typed settings.
"""

from bids_taskenc.group.inputs import GroupInputError, GroupInputs, read_group_inputs
from bids_taskenc.group.result import GroupResult
from bids_taskenc.group.run import Reference, compute_group, resolve_reference
from bids_taskenc.group.write import write_group_results

__all__ = [
    "GroupInputError",
    "GroupInputs",
    "GroupResult",
    "Reference",
    "compute_group",
    "read_group_inputs",
    "resolve_reference",
    "write_group_results",
]
