"""The CV-solver registry of banded ridge: choices read from it without torch, a toy solver plugged in by name."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from bids_taskenc.core.registry import UnknownChoiceError, resolve
from bids_taskenc.encoding.banded import (
    REGISTRY,
    BandedProblem,
    BandedSolution,
    CVSolver,
    fit_banded_ridge,
    per_fold,
    variance_partitioning,
)
from bids_taskenc.report.citation import cv_solver_sentence

TOY_METHODS = "Only the equal band weights were searched (a toy solver of the test suite)."


def equal_weights_only(problem: BandedProblem) -> BandedSolution:
    """A toy CV solver: per-fold's scores, but only the first grid row (the equal weights) may win."""
    scores = per_fold.cv_scores(problem)
    scores[1:] = -torch.inf
    choice = per_fold.select(scores)
    test = per_fold.refit(problem, choice.alpha_index, choice.grid_index)
    return BandedSolution(choice.alpha_index, choice.grid_index, choice.cv_best, choice.per_weight, test)


TOY = CVSolver(
    name="equal-weights",
    description="per-fold scores, equal band weights only (test)",
    methods=TOY_METHODS,
    implementation=f"{__name__}:equal_weights_only",
    citations=("dupre2022himalaya",),
)


def data(seed=0, n_train=90, n_test=30, p=(5, 7), v=12):
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    xa = rng.standard_normal((n, p[0])) + 1.0
    xb = rng.standard_normal((n, p[1])) + 0.4 * xa[:, :1]
    y = xa @ rng.standard_normal((p[0], v)) * np.linspace(0, 1, v) + xb @ rng.standard_normal((p[1], v)) * 0.5
    y += 2.0 * rng.standard_normal((n, v))
    tr, te = slice(0, n_train), slice(n_train, None)
    return [xa[tr], xb[tr]], y[tr], [xa[te], xb[te]], y[te]


KW = dict(n_folds=3, alphas=np.logspace(-1, 3, 5), precision="double")


def test_registry_lists_the_three_solvers_without_torch():
    code = (
        "import sys\n"
        "from bids_taskenc.encoding.banded import REGISTRY\n"
        "print(','.join(REGISTRY.names()), 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["per-fold,hold-out,cholesky", "False"]
    for entry in REGISTRY:
        assert entry.description and entry.methods.endswith(".")
        assert callable(resolve(entry.implementation))


def test_toy_solver_is_chosen_by_name_and_recorded():
    xtr, ytr, xte, yte = data()
    with REGISTRY.temporarily(TOY):
        toy = fit_banded_ridge(xtr, ytr, xte, yte, cv_solver="equal-weights", **KW)
    full = fit_banded_ridge(xtr, ytr, xte, yte, cv_solver="per-fold", **KW)
    equal = fit_banded_ridge(xtr, ytr, xte, yte, cv_solver="per-fold", band_weights=[[0.5, 0.5]], **KW)
    assert toy.cv_solver == "equal-weights" and toy.metadata()["CVSolver"] == "equal-weights"
    assert (toy.grid_index == 0).all() and len(np.unique(full.grid_index)) > 1  # the toy really ran
    np.testing.assert_array_equal(toy.alpha, equal.alpha)  # per-fold's scores of the equal weights
    np.testing.assert_allclose(toy.r, equal.r, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(toy.cv_scores_per_weight[0], full.cv_scores_per_weight[0], rtol=1e-6, atol=1e-7)
    assert np.isneginf(toy.cv_scores_per_weight[1:]).all()
    assert "equal-weights" not in REGISTRY  # gone after the block
    with pytest.raises(UnknownChoiceError, match="cv_solver 'equal-weights'; choose one of: per-fold, hold-out"):
        fit_banded_ridge(xtr, ytr, xte, yte, cv_solver="equal-weights", **KW)


def test_toy_solver_reaches_the_partitioning_sidecar_and_its_methods_sentence():
    """What the workflow writes of a partitioning (``VariancePartitioning`` = ``PartitionResult.metadata()``)
    names the solver of every model, and the registry gives the methods text its sentence and citations."""
    xtr, ytr, xte, yte = data(1)
    with REGISTRY.temporarily(TOY):
        vp = variance_partitioning(xtr, ytr, xte, yte, cv_solver="equal-weights", **KW)
        solver = vp.metadata()["JointModel"]["CVSolver"]
        assert solver == "equal-weights" and all(r.cv_solver == solver for r in vp.reduced)
        assert REGISTRY[solver].methods == TOY_METHODS and REGISTRY[solver].citations == ("dupre2022himalaya",)
        sentence = cv_solver_sentence(solver)  # what the methods text says of the partitioning's folds
    assert sentence == TOY_METHODS.rstrip(".") + " [@dupre2022himalaya]."
    assert cv_solver_sentence(solver) == ""  # not registered any more: nothing claimed
    assert cv_solver_sentence("per-fold") == REGISTRY["per-fold"].methods
    assert (vp.joint.grid_index == 0).all()


def test_hold_out_entry_needs_centred_features():
    xtr, ytr, xte, yte = data()
    toy = CVSolver(name="toy-hold-out", description="d", methods="m.", implementation=TOY.implementation, hold_out=True)
    with REGISTRY.temporarily(toy), pytest.raises(ValueError, match="needs standardize=False"):
        fit_banded_ridge(xtr, ytr, xte, yte, cv_solver="toy-hold-out", standardize=True, **KW)
    with pytest.raises(ValueError, match="factor must be"):
        CVSolver(name="x", description="d", methods="m.", implementation="a:b", factor="qr")
