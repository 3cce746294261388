"""The engine's choices and default grid, without torch: the command line's help and checks read them.

``bids_taskenc --help`` and ``--version`` build the parser from these names; importing torch (4–19 s on a
cold file system) for three tuples would make them slow, so they live here and the modules that compute
(:mod:`.fit`, :mod:`.ridge`, :mod:`.device`) import them from here.
"""

from __future__ import annotations

import numpy as np

#: Default alpha grid: 17 values, half a decade apart, 1 … 1e8. For
#: standardised features the scale of ``XᵀX`` is ``n`` per feature
#: (trace ``n·p``, about 1e7 for n≈5000, p=2048): α = 1 is almost ordinary
#: least squares when ``n > p`` and α = 1e8 shrinks every prediction to
#: nearly zero, so the optimum of voxels from barely to well predicted
#: (α ≈ p·(1-R²)/R² for isotropic features) lies inside the grid.
DEFAULT_ALPHAS = np.logspace(0, 8, 17)

#: Scores that choose each voxel's alpha in the CV (:func:`.ridge.cv_scores`).
CV_SCORES = ("r", "r2")

#: Precision modes of every engine (:mod:`.device`).
PRECISIONS = ("exact", "fast", "double")
