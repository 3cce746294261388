"""The group level's choice lists, without numpy-heavy imports: the command line's help and the settings'
checks read them, :mod:`.resampling` uses them.
"""

from __future__ import annotations

#: ``--tree-bootstrap``: how clade support is resampled (docs/tree-support.md). ``auto`` is participant-t with
#: three or more participants (calibrated support), else block (descriptive support).
TREE_BOOTSTRAPS = ("auto", "block", "participant", "participant-t")
