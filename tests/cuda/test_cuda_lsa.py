"""Single-trial LSA betas on the GPU against the CPU (float64 both: agreement to rounding)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bids_taskenc.responses.lsa import lsa_design, solve_ols

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (torch sees none)"),
]


def _run(seed=0, n_vols=194, n_trials=37, n_voxels=20_000, rank_deficient=False):
    rng = np.random.default_rng(seed)
    onsets = 6.0 + 10.0 * np.arange(n_trials)
    confounds = rng.standard_normal((n_vols, 6))
    if rank_deficient:
        confounds[:, 5] = confounds[:, 4]  # a duplicated column: the pseudo-inverse path
    design, k = lsa_design(onsets, np.ones(n_trials), n_vols, 2.0, confounds=confounds)
    truth = rng.standard_normal((design.shape[1], n_voxels))
    series = design @ truth + 0.5 * rng.standard_normal((n_vols, n_voxels))
    return design, series, k


@pytest.mark.parametrize("rank_deficient", [False, True])
def test_solve_ols_gpu_matches_cpu(rank_deficient):
    design, series, k = _run(rank_deficient=rank_deficient)
    cpu = solve_ols(design, series, device="cpu")
    gpu = solve_ols(design, series, device="cuda", batch=7_000)  # several voxel batches
    assert gpu.shape == cpu.shape == (design.shape[1], series.shape[1])
    scale = np.abs(cpu[:k]).max()
    np.testing.assert_allclose(gpu[:k], cpu[:k], rtol=0, atol=1e-8 * scale)
    if not rank_deficient:
        ref = np.linalg.lstsq(design, series, rcond=None)[0]
        np.testing.assert_allclose(gpu[:k], ref[:k], rtol=0, atol=1e-8 * scale)


def test_lsa_responses_gpu_matches_cpu(small_dataset):
    from bids_taskenc.bids.dataset import Selection, open_layout, select_runs
    from bids_taskenc.bids.preprocessed import find_preprocessed, open_derivatives
    from bids_taskenc.bids.trials import build_trials
    from bids_taskenc.responses.lsa import lsa_responses

    ds = small_dataset
    runs = select_runs(open_layout(ds.bids_dir), Selection(tasks=["5000scenes"]))
    layouts = open_derivatives([ds.fmriprep_dir])
    pre = [find_preprocessed(layouts, r, "T1w") for r in runs]
    trials = build_trials(runs)
    cpu = lsa_responses(pre, trials, device="cpu")
    gpu = lsa_responses(pre, trials, device="cuda")
    assert list(gpu.image_ids) == list(cpu.image_ids)
    np.testing.assert_allclose(gpu.data, cpu.data, rtol=0, atol=1e-5)
