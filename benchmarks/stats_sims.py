"""Simulations behind docs/statistics.md: the alpha criterion's effect on test R², the contrast p of
near-collinear predictions, and the held-out split of a blocked design.

Each prints one line of numbers per setting; run one with

    PYTHONPATH=. python benchmarks/stats_sims.py cvscore   # issue 23 part 1: 1,200 images x 300 features
    PYTHONPATH=. python benchmarks/stats_sims.py collinear # part 3: contrasts at r(A, B) = 0.99999
    PYTHONPATH=. python benchmarks/stats_sims.py blocked   # part 4: 7-trial blocks, autocorrelated noise

The same functions, at smaller sizes, are what the tests in tests/encoding/test_stats_calibration.py run.
"""

from __future__ import annotations

import argparse
import logging

import numpy as np

from bids_taskenc.encoding import fit_encoding_model, grouped_train_test_split_indices, train_test_split_indices
from bids_taskenc.encoding.contrasts import contrast_test
from bids_taskenc.testing.encoding_data import blocked_design, near_collinear_predictions, null_signal_data

log = logging.getLogger("stats_sims")


def cv_score_bias(cv_score, n=1200, p=300, v=400, seed=0, fdr=0.05):
    """Test R² of null and signal voxels and FDR detections with alpha chosen by ``cv_score``."""
    X, Y, sig = null_signal_data(n, p, v, seed=seed)
    tr, te = train_test_split_indices(n, 0.15, seed)
    res = fit_encoding_model(X[tr], Y[tr], X[te], Y[te], cv_score=cv_score, seed=seed, fdr_alpha=fdr)
    r2 = np.asarray(res.r2, float)
    alpha = np.asarray(res.alpha, float)
    return {
        "cv_score": cv_score,
        "null_mean_r2": float(r2[~sig].mean()),
        "null_p5_r2": float(np.percentile(r2[~sig], 5)),
        "null_at_min_alpha": float((alpha[~sig] == alpha.min(initial=np.inf)).mean()),
        "null_at_smallest_grid_alpha": float((alpha[~sig] == 1.0).mean()),
        "signal_mean_r2": float(r2[sig].mean()),
        "detections": int((np.asarray(res.q) < fdr).sum()),
        "false_detections": int(((np.asarray(res.q) < fdr) & ~sig).sum()),
    }


def collinear_null(n_test=737, v=20000, r_ab=0.99999, seed=0):
    """P(p < .001) and P(p < .05) of the pair contrast on null voxels whose two predictions correlate
    ``r_ab``; both predictions are equally unrelated to the responses."""
    y, a, b = near_collinear_predictions(n_test, v, r_ab, seed)
    res = contrast_test(y, [a], [b], n_bootstrap=0)
    p = np.asarray(res.p, float)
    return {"r_ab": r_ab, "p<.001": float((p < 0.001).mean()), "p<.05": float((p < 0.05).mean())}


def blocked_null(split, n_permutations=0, n_runs=24, v=300, phi=0.5, seed=0, test_fraction=0.15):
    """P(p < .05) of the voxels' test r under the blocked design's null, the test split by image or by run; with
    ``n_permutations`` the permutation p (free shuffles for the image split, circular shifts within each held-out
    run for the run split)."""
    X, Y, run = blocked_design(n_runs=n_runs, v=v, phi=phi, seed=seed)
    if split == "image":
        tr, te = train_test_split_indices(len(X), test_fraction, seed)
        groups = test_groups = None
    else:
        tr, te = grouped_train_test_split_indices(run, test_fraction, seed)
        groups, test_groups = run[tr], run[te]
    res = fit_encoding_model(
        X[tr], Y[tr], X[te], Y[te], groups=groups, test_groups=test_groups, n_permutations=n_permutations, seed=seed
    )
    p = np.asarray(res.p, float)
    return {
        "phi": phi,
        "split": split,
        "p": "analytic" if not n_permutations else res.permutation_scheme,
        "p<.05": float((p < 0.05).mean()),
        "mean_r": float(np.mean(res.r)),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", choices=["cvscore", "collinear", "blocked"])
    parser.add_argument("--seeds", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for seed in range(args.seeds):
        if args.which == "cvscore":
            for score in ("r", "r2"):
                log.info("seed %d %s", seed, cv_score_bias(score, seed=seed))
        elif args.which == "collinear":
            for r_ab in (0.999, 0.9999, 0.99999):
                log.info("seed %d %s", seed, collinear_null(r_ab=r_ab, seed=seed))
        else:
            for phi in (0.5, 0.9):
                for split in ("image", "run"):
                    for n_perm in (0, 1000):
                        log.info("seed %d %s", seed, blocked_null(split, n_perm, phi=phi, seed=seed))


if __name__ == "__main__":
    main()
