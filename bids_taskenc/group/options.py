"""The group level's choice lists, without numpy-heavy imports: the command line's help and the settings'
checks read them, :mod:`.resampling` uses them.
"""

from __future__ import annotations

#: ``--tree-bootstrap``: how clade support is resampled (docs/tree-support.md). ``auto`` is participant-t with
#: three or more participants (calibrated support), else block (descriptive support).
TREE_BOOTSTRAPS = ("auto", "block", "participant", "participant-t")

#: The group level's defaults (``GroupSettings`` and the command line read them): resamples for tree support,
#: permutations for the Mantel and consistency p-values, neighbours per task in the graph's top-k table.
DEFAULT_TREE_BOOTSTRAP = "auto"
DEFAULT_N_BOOTSTRAP = 1000
DEFAULT_GROUP_PERMUTATIONS = 10000
DEFAULT_TOP_K = 3
