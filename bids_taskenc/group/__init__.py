"""Group level: task x task similarity, tree, graph, Taskonomy comparison, group maps.

Reads participant outputs only (never refits), in three steps that a notebook can call one by one:
:func:`~bids_taskenc.group.inputs.read_group_inputs` (the participants' maps),
:func:`~bids_taskenc.group.run.compute_group` (a :class:`~bids_taskenc.group.result.GroupResult`, no files) and
:func:`~bids_taskenc.group.write.write_group_results` (the derivatives, staged).
:func:`bids_taskenc.workflow.group.run_group` runs all three from typed settings.
"""

from bids_taskenc.core.lazy import lazy_exports

#: Public name -> the module that defines it, imported on first use: the command line reads the light
#: :mod:`.options` for its help, and ``bids_taskenc --help`` must not wait for nibabel, pandas and scipy.
_PUBLIC = {
    "GroupInputError": "inputs",
    "GroupInputs": "inputs",
    "read_group_inputs": "inputs",
    "GroupResult": "result",
    "Reference": "run",
    "compute_group": "run",
    "resolve_reference": "run",
    "write_group_results": "write",
}
__all__ = sorted(_PUBLIC)

__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
