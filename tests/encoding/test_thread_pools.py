"""The engines' thread pools give the results of running their jobs one after another.

The suite runs with one thread per library (tests/conftest.py), under which the engines run their
decompositions serially; these tests give torch two threads so that the pools run as on a user's machine.
Simulation: ``encoding_sim.simulate`` (seed 0, 120 training and 40 test images, 15 features, 12 voxels) and two
feature sets cut from it; precision 'double' so that the choices do not hinge on float32 rounding.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from encoding_sim import simulate

from bids_taskenc.encoding import fit_encoding_model
from bids_taskenc.encoding.banded import fit_banded_ridge


@pytest.fixture
def threads():
    """Run a callable with torch limited to ``n`` intra-op threads (restored afterwards)."""
    before = torch.get_num_threads()

    def run(n, fn, *args, **kwargs):
        torch.set_num_threads(n)
        try:
            return fn(*args, **kwargs)
        finally:
            torch.set_num_threads(before)

    return run


def test_ridge_folds_in_a_pool_equal_serial_folds(threads):
    xtr, ytr, xte, yte = simulate()
    kw = dict(n_folds=4, precision="double")
    serial = threads(1, fit_encoding_model, xtr, ytr, xte, yte, **kw)
    pooled = threads(2, fit_encoding_model, xtr, ytr, xte, yte, **kw)
    np.testing.assert_array_equal(pooled.alpha, serial.alpha)
    np.testing.assert_allclose(pooled.r, serial.r, atol=1e-10)
    np.testing.assert_allclose(pooled.cv_score, serial.cv_score, atol=1e-10)


@pytest.mark.parametrize("cv_solver", ["per-fold", "hold-out"])
def test_banded_grid_in_a_pool_equals_serial_grid(threads, cv_solver):
    xtr, ytr, xte, yte = simulate(p=14)
    sets, tests = [xtr[:, :6], xtr[:, 6:]], [xte[:, :6], xte[:, 6:]]
    kw = dict(n_folds=4, precision="double", cv_solver=cv_solver, standardize=cv_solver == "per-fold")
    serial = threads(1, fit_banded_ridge, sets, ytr, tests, yte, **kw)
    pooled = threads(2, fit_banded_ridge, sets, ytr, tests, yte, **kw)
    np.testing.assert_array_equal(pooled.grid_index, serial.grid_index)
    np.testing.assert_array_equal(pooled.alpha, serial.alpha)
    np.testing.assert_allclose(pooled.cv_scores_per_weight, serial.cv_scores_per_weight, atol=1e-10)
    np.testing.assert_allclose(pooled.r, serial.r, atol=1e-10)
