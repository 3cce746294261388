"""The GPU memory budget: a small ``mem_gb`` splits the voxels into batches that fit it, same results."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bids_taskenc.encoding import fit as fit_mod
from bids_taskenc.encoding import fit_encoding_model, train_test_split_indices
from bids_taskenc.encoding.device import CUDA_MEMORY_FRACTION, memory_budget_bytes

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (torch sees none)"),
]


def _data(n=2000, p=512, v=6000, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)).astype(np.float32)
    W = rng.standard_normal((p, v)).astype(np.float32) / np.sqrt(p)
    Y = (X @ W) * np.geomspace(1, 0.05, v).astype(np.float32) + rng.standard_normal((n, v)).astype(np.float32)
    tr, te = train_test_split_indices(n, 0.15, seed=0)
    return X[tr], Y[tr], X[te], Y[te]


def _counting_batches(monkeypatch):
    calls = []
    real = fit_mod._ridge.select_alphas

    def counted(scores):
        calls.append(scores.shape[1])
        return real(scores)

    monkeypatch.setattr(fit_mod._ridge, "select_alphas", counted)
    return calls


def test_default_budget_is_a_fraction_of_free_memory():
    free, _ = torch.cuda.mem_get_info(0)
    budget = memory_budget_bytes(torch.device("cuda", 0), None)
    assert budget == pytest.approx(CUDA_MEMORY_FRACTION * free, rel=0.05)
    assert memory_budget_bytes(torch.device("cuda", 0), 1.5) == 1_500_000_000


def test_small_budget_splits_batches_and_is_kept(monkeypatch):
    args = _data()
    torch.cuda.empty_cache()
    calls = _counting_batches(monkeypatch)
    whole = fit_encoding_model(*args, device="cuda", seed=0)
    assert calls == [args[1].shape[1]]  # the default budget takes all voxels at once
    calls.clear()

    mem_gb = 0.25
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    split = fit_encoding_model(*args, device="cuda", seed=0, mem_gb=mem_gb)
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    assert len(calls) >= 3 and sum(calls) == args[1].shape[1], calls
    assert peak <= mem_gb * 1e9, f"peak {peak / 1e9:.3f} GB over the {mem_gb} GB budget"
    assert np.mean(split.alpha == whole.alpha) >= 0.999
    same = split.alpha == whole.alpha
    np.testing.assert_allclose(split.r[same], whole.r[same], atol=1e-5)
