"""What a CV solver of banded ridge gets (:class:`BandedProblem`) and returns (:class:`BandedSolution`).

:func:`~bids_taskenc.encoding.banded.fit_banded_ridge` checks the inputs, scales the features, sizes the voxel
batches and hands one frozen :class:`BandedProblem` to the solver the registry names
(:mod:`~bids_taskenc.encoding.banded.registry`); the solver scores the grid on the folds, chooses each voxel's
(band weights, alpha) and scores the refit on the test set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch

from ..fit import _Clock
from .kernels import _columns_any


class CentredTargets(NamedTuple):
    """Training targets of some voxels: ``ys`` (n_train, v) centred (0 where constant), their column sums,
    means (v,), and ``b = xsᵀ ys`` (p, v) where a features-side solver needs it (else None)."""

    ys: torch.Tensor
    y_sum: torch.Tensor
    y_mean: torch.Tensor
    b: torch.Tensor | None


class TargetCache:
    """``targets(cols)``: the :class:`CentredTargets` of voxels ``cols`` (a slice or an index array), in the
    compute dtype on the device; kept when one batch holds every voxel."""

    def __init__(
        self, y_train: Any, device: torch.device, dtype: torch.dtype, xs_c: torch.Tensor | None, one_batch: bool
    ) -> None:
        self.y_train, self.device, self.dtype, self.xs_c = y_train, device, dtype, xs_c
        self.one_batch = one_batch
        self._cache: dict[tuple[int, int], CentredTargets] = {}

    def __call__(self, cols: slice | np.ndarray) -> CentredTargets:
        key = (cols.start, cols.stop) if isinstance(cols, slice) else None
        if key is not None and key in self._cache:
            return self._cache[key]
        yb = _columns_any(self.y_train, cols, self.device, self.dtype)
        if not bool(torch.isfinite(yb).all()):
            raise ValueError("Y_train contains NaN or inf")
        y_mean = yb.mean(0, dtype=torch.float64).to(self.dtype)
        ys = torch.where(yb.amax(0) > yb.amin(0), yb - y_mean, torch.zeros_like(yb))
        out = CentredTargets(ys, ys.sum(0), y_mean, self.xs_c.T @ ys if self.xs_c is not None else None)
        if self.one_batch and key is not None:
            self._cache[key] = out
        return out


@dataclass(frozen=True)
class BandedProblem:
    """The fold, grid and data context every CV solver needs.

    Attributes
    ----------
    xs, xs_test : (n_train, p) / (n_test, p) float64 features, centred (and scaled when ``standardize``) on the
        training set, on the device.
    y_test : (n_test, v) test responses (numpy array or tensor, any device).
    targets : the centred training targets of a batch of voxels (:class:`TargetCache`).
    bands : each set's columns of ``xs``.
    grid : (n_grid, n_sets) float64 band weights; alphas : (n_alphas,) float64 tensor on the device.
    folds : (train, validation) index arrays of the CV folds.
    batches : voxel batches (slices covering ``0 … v``); batch : their size.
    dtype : compute dtype of the products with the targets; eigh_dtype : that of the eigendecompositions.
    fast : ``precision == 'fast'``.
    cv_score : 'r', 'r2' or 'negmse'; standardize : per-fold scaling of the features.
    fold_kind, full_kind : 'samples' or 'features', the Gram side of each fold and of the whole training set
        (per-fold solvers); hold_kind : that of the hold-out solvers.
    gram_xs : (p, p) ``xsᵀ xs`` where a features-side decomposition needs it, else None.
    workers : decompositions run at once on the CPU.
    return_predictions, progress : keep the test predictions; show a progress bar.
    clock : stage timings (``setup``, ``decompose``, ``cv``, ``select``, ``refit``).
    """

    xs: torch.Tensor
    xs_test: torch.Tensor
    y_test: Any
    targets: TargetCache
    bands: tuple[slice, ...]
    grid: np.ndarray
    alphas: torch.Tensor
    folds: Sequence[tuple[np.ndarray, np.ndarray]]
    batches: tuple[slice, ...]
    batch: int
    dtype: torch.dtype
    eigh_dtype: torch.dtype
    fast: bool
    cv_score: str
    standardize: bool
    fold_kind: tuple[str, ...]
    full_kind: str
    hold_kind: str
    gram_xs: torch.Tensor | None
    workers: int
    return_predictions: bool
    progress: bool
    clock: _Clock

    @property
    def device(self) -> torch.device:
        return self.xs.device

    @property
    def n_sets(self) -> int:
        return len(self.bands)

    @property
    def n_grid(self) -> int:
        return int(self.grid.shape[0])

    @property
    def n_voxels(self) -> int:
        return int(self.batches[-1].stop)


@dataclass
class TestScores:
    """Test-set scores of the refit, per voxel: r, R², whether r is defined, the R² split (n_sets, v), the
    intercept (training mean), and the (n_test, v) predictions in response units (if asked for)."""

    __test__ = False  # not a pytest class

    r: np.ndarray
    r2: np.ndarray
    ok: np.ndarray
    split: np.ndarray
    intercept: np.ndarray
    predictions: np.ndarray | None

    @classmethod
    def empty(cls, n_sets: int, n_test: int, n_voxels: int, return_predictions: bool) -> TestScores:
        """Zeros (float32; ``ok`` False) to be filled batch by batch."""
        return cls(
            r=np.zeros(n_voxels, np.float32),
            r2=np.zeros(n_voxels, np.float32),
            ok=np.zeros(n_voxels, bool),
            split=np.zeros((n_sets, n_voxels), np.float32),
            intercept=np.zeros(n_voxels, np.float32),
            predictions=np.empty((n_test, n_voxels), np.float32) if return_predictions else None,
        )


@dataclass
class BandedSolution:
    """What a CV solver returns: per voxel the chosen alpha's index, grid row and mean CV score (v,) tensors,
    each grid row's best mean CV score (n_grid, v), and the refit's :class:`TestScores`."""

    alpha_index: torch.Tensor
    grid_index: torch.Tensor
    cv_best: torch.Tensor
    per_weight: torch.Tensor
    test: TestScores
