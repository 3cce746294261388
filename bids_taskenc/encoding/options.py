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
CV_SCORES = ("r", "r2", "negmse")
#: The criterion that chooses alpha unless told otherwise: the validation R² (mean squared error per fold).
DEFAULT_CV_SCORE = "r2"
#: What each criterion does to the test-set R² maps: the sidecars' ``CVScoreEffect``, the methods text, and
#: docs/statistics.md (numbers: ``benchmarks/stats_sims.py cvscore``).
CV_SCORE_EFFECTS = {
    "r": "Pearson r as the criterion ignores the scale of the predictions, so a voxel that nothing predicts often "
    "takes the smallest alpha and keeps noisy, unshrunk predictions: its test R-squared is biased downward (null "
    "voxels averaged R-squared -0.24 in simulation, -0.01 with the r2 criterion), while r, p and q are unaffected",
    "r2": "The R-squared criterion (the mean over folds of 1 - SS_res/SS_tot, which orders the alphas as the mean "
    "squared error does) shrinks the predictions of voxels that nothing predicts towards the training mean, so "
    "their test R-squared stays near 0",
    "negmse": "The negative mean squared error (the criterion of Wang et al. 2019's code) orders the alphas of each "
    "fold as the R-squared criterion does (each fold's mean squared error counts equally, instead of each fold's "
    "R-squared), so the "
    "test R-squared of voxels that nothing predicts stays near 0",
}

#: Which alternative the p-value of r tests (:func:`.stats.analytic_p`, the permutation p).
P_VALUE_SIDES = {
    "one-sided": "H1: r > 0 (the model predicts the voxel)",
    "two-sided": "H1: r != 0 (as scipy.stats.pearsonr by default; Wang et al. 2019's code)",
}

#: Precision modes of every engine (:mod:`.device`).
PRECISIONS = ("exact", "fast", "double")
