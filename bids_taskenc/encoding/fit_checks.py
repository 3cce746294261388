"""The checks of :func:`~bids_taskenc.encoding.fit.fit_encoding_model`'s inputs: shapes, dtypes, options, folds.

Each check raises one ``ValueError`` naming the argument and what is wrong, before any work is done.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from . import device as _dev
from . import ridge as _ridge
from . import stats as _stats
from .cv import kfold_indices, validation_split_indices


def _as_2d(name: str, a, allow_1d: bool) -> np.ndarray | torch.Tensor:
    if not isinstance(a, torch.Tensor):
        a = np.asarray(a)
        if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
            raise ValueError(f"{name} must be a real numeric array, got dtype {a.dtype}")
    if a.ndim == 1 and allow_1d:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_columns), got shape {tuple(a.shape)}")
    return a


def _host_float64(name: str, a) -> np.ndarray:
    a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else a
    a = np.asarray(a, dtype=np.float64)
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or inf")
    return a


def _check_rows(name: str, rows, n: int) -> np.ndarray | None:
    """``rows`` as a 1-D integer index array into ``n`` rows (None stays None)."""
    if rows is None:
        return None
    rows = np.asarray(rows)
    if rows.ndim != 1 or rows.dtype.kind not in "iu":
        raise ValueError(
            f"{name} must be a 1-D array of integer row indices, got shape {rows.shape} dtype {rows.dtype}"
        )
    if rows.size and (rows.min() < 0 or rows.max() >= n):
        raise ValueError(f"{name} indexes rows outside 0..{n - 1}")
    return rows.astype(np.intp, copy=False)


def _check_alphas(alphas) -> np.ndarray:
    alphas = np.asarray(alphas, dtype=np.float64).ravel()
    if alphas.size == 0 or not np.isfinite(alphas).all() or (alphas <= 0).any():
        raise ValueError("alphas must be a non-empty sequence of positive finite numbers")
    return np.unique(alphas)


@dataclass
class CheckedInputs:
    """The validated inputs: 2-D arrays, row indices, sizes."""

    X_train: np.ndarray | torch.Tensor
    Y_train: np.ndarray | torch.Tensor
    X_test: np.ndarray | torch.Tensor
    Y_test: np.ndarray | torch.Tensor
    train_rows: np.ndarray | None
    test_rows: np.ndarray | None
    n_train: int
    n_test: int
    n_features: int
    n_voxels: int


def check_inputs(X_train, Y_train, X_test, Y_test, train_rows, test_rows) -> CheckedInputs:
    """Shapes and dtypes of the data (NaN/inf in X is checked on the host copy, in Y per voxel batch)."""
    X_train = _as_2d("X_train", X_train, allow_1d=False)
    X_test = _as_2d("X_test", X_test, allow_1d=False)
    Y_train = _as_2d("Y_train", Y_train, allow_1d=True)
    Y_test = _as_2d("Y_test", Y_test, allow_1d=True)
    train_rows = _check_rows("train_rows", train_rows, Y_train.shape[0])
    test_rows = _check_rows("test_rows", test_rows, Y_test.shape[0])
    n_train, p = X_train.shape
    n_test = X_test.shape[0]
    n_voxels = Y_train.shape[1]
    n_y_train = Y_train.shape[0] if train_rows is None else len(train_rows)
    n_y_test = Y_test.shape[0] if test_rows is None else len(test_rows)
    if n_y_train != n_train:
        raise ValueError(f"X_train has {n_train} samples but Y_train has {n_y_train}")
    if n_y_test != n_test:
        raise ValueError(f"X_test has {n_test} samples but Y_test has {n_y_test}")
    if X_test.shape[1] != p:
        raise ValueError(f"X_train has {p} features but X_test has {X_test.shape[1]}")
    if Y_test.shape[1] != n_voxels:
        raise ValueError(f"Y_train has {n_voxels} voxels but Y_test has {Y_test.shape[1]}")
    if n_test < 3:
        raise ValueError(f"need at least 3 test samples for correlations and p-values, got {n_test}")
    if p < 1 or n_voxels < 1:
        raise ValueError("need at least one feature and one voxel")
    return CheckedInputs(X_train, Y_train, X_test, Y_test, train_rows, test_rows, n_train, n_test, p, n_voxels)


def check_options(cv_score: str, gram: str, precision: str, n_permutations, fdr_alpha: float, p_sides: str) -> int:
    """An error for a bad option value; the number of permutations as an int."""
    if cv_score not in _ridge.CV_SCORES:
        raise ValueError(f"cv_score must be one of {_ridge.CV_SCORES}, got {cv_score!r}")
    if gram not in _ridge.GRAMS:
        raise ValueError(f"gram must be one of {_ridge.GRAMS}, got {gram!r}")
    _dev.check_precision(precision)
    if isinstance(n_permutations, bool) or int(n_permutations) != n_permutations or n_permutations < 0:
        raise ValueError(f"n_permutations must be a non-negative integer, got {n_permutations!r}")
    if not 0.0 < fdr_alpha < 1.0:
        raise ValueError(f"fdr_alpha must be in (0, 1), got {fdr_alpha!r}")
    _stats.check_sides(p_sides)
    return int(n_permutations)


def make_folds(
    n_train: int, n_folds: int, groups, validation_fraction: float | None, seed: int
) -> tuple[list[tuple[np.ndarray, np.ndarray]], str]:
    """The CV folds ``[(train, validation)]`` over the training samples, and the scheme's name."""
    if validation_fraction is not None:
        if groups is not None:
            raise ValueError("give groups (leave-one-group-out) or validation_fraction (one split), not both")
        return validation_split_indices(n_train, validation_fraction, seed=seed), "holdout"
    folds = kfold_indices(n_train, n_folds, seed=seed, groups=groups)
    return folds, "leave-one-group-out" if groups is not None else "kfold"
