"""Ridge on the GPU against the same fit on the CPU (precision 'exact' and 'fast').

BOLD5000-like sizes (4,916 images, 85/15 split, 7 folds, 17 alphas) with
1,024 features and 3,000 voxels of mixed signal-to-noise, as in
``benchmarks/ridge.py``. Near-ties between adjacent alphas can flip with
rounding, so alpha agreement is a fraction, and r is compared where both
picked the same alpha.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bids_taskenc.encoding import device as dev_mod
from bids_taskenc.encoding import fit_encoding_model, train_test_split_indices
from bids_taskenc.testing.encoding_data import correlated_encoding_data

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (torch sees none)"),
]

ALPHAS = np.logspace(0, 8, 17)


def tf32_state():
    """The process-wide float32 matmul setting, read through the API device.py sets it with."""
    matmul = torch.backends.cuda.matmul
    return matmul.fp32_precision if hasattr(matmul, "fp32_precision") else matmul.allow_tf32


@pytest.fixture(scope="module")
def fits():
    X, Y = correlated_encoding_data(4916, 1024, 3000)
    tr, te = train_test_split_indices(len(X), 0.15, seed=0)
    args = (X[tr], Y[tr], X[te], Y[te])
    kw = dict(alphas=ALPHAS, n_folds=7, seed=0)
    restore = dev_mod._set_tf32(False)  # a known process-wide setting; restored below
    before = tf32_state()
    out = {
        "cpu_exact": fit_encoding_model(*args, device="cpu", precision="exact", **kw),
        "gpu_exact": fit_encoding_model(*args, device="cuda", precision="exact", **kw),
        "gpu_fast": fit_encoding_model(*args, device="cuda", precision="fast", **kw),
        "tf32_flag_before": before,
        "tf32_flag_after": tf32_state(),
    }
    restore()
    return out


def _same_alpha_r_diff(a, b):
    same = a.alpha == b.alpha
    return float(same.mean()), float(np.abs(a.r[same] - b.r[same]).max()), same


def test_exact_on_gpu_matches_cpu(fits):
    frac, max_dr, same = _same_alpha_r_diff(fits["gpu_exact"], fits["cpu_exact"])
    assert fits["gpu_exact"].device.startswith("cuda") and fits["cpu_exact"].device == "cpu"
    assert frac >= 0.995, f"exact: GPU and CPU chose the same alpha on only {100 * frac:.2f}% of voxels"
    assert max_dr <= 1e-4, f"exact: r differs by up to {max_dr:.2e} between GPU and CPU"
    np.testing.assert_allclose(fits["gpu_exact"].r2[same], fits["cpu_exact"].r2[same], atol=1e-4)
    np.testing.assert_allclose(fits["gpu_exact"].cv_scores_per_alpha, fits["cpu_exact"].cv_scores_per_alpha, atol=1e-5)


def test_fast_on_gpu_picks_the_same_alphas(fits):
    frac, max_dr, _ = _same_alpha_r_diff(fits["gpu_fast"], fits["cpu_exact"])
    assert frac >= 0.98, f"fast: same alpha as CPU exact on only {100 * frac:.2f}% of voxels"
    # the refit and the test-set predictions stay IEEE float32 in 'fast'
    assert max_dr <= 1e-4, f"fast: r differs by up to {max_dr:.2e} where the alphas agree"


def test_fast_uses_tf32_only_inside_the_fit(fits):
    cv_fast = fits["gpu_fast"].cv_scores_per_alpha
    cv_exact = fits["gpu_exact"].cv_scores_per_alpha
    diff = np.abs(cv_fast - cv_exact)
    # TF32 (10 mantissa bits) moves the CV scores far beyond float32 rounding, but not much
    assert diff.max() > 5e-6, "precision='fast' gave float32-identical CV scores: TF32 was not used"
    assert diff.max() < 1e-3
    # and the process-wide matmul setting is left as it was
    assert fits["tf32_flag_before"] in ("ieee", False)
    assert fits["tf32_flag_after"] == fits["tf32_flag_before"]


def test_device_tensors_are_accepted():
    X, Y = correlated_encoding_data(300, 64, 200, seed=1)
    tr, te = train_test_split_indices(len(X), 0.15, seed=0)
    host = fit_encoding_model(X[tr], Y[tr], X[te], Y[te], alphas=ALPHAS, device="cuda")
    t = [torch.from_numpy(a).cuda() for a in (X[tr], Y[tr], X[te], Y[te])]
    dev = fit_encoding_model(*t, alphas=ALPHAS, device="cuda")
    np.testing.assert_array_equal(host.alpha, dev.alpha)
    np.testing.assert_allclose(host.r, dev.r, atol=1e-6)
