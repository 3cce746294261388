"""Variance partitioning between feature sets (:func:`variance_partitioning`): the joint banded model and,
for each set, the model without it, scored on the same test images."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ...core.fdr import DEFAULT_FDR_LEVEL, below_fdr_level
from .. import stats as _stats
from .fit_banded import fit_banded_ridge
from .grid import DEFAULT_RATIO_SPAN, default_ratio_step
from .result import BandedRidgeResult
from .split import unique_variance_test


@dataclass
class PartitionResult:
    """Variance partitioning of the test-set R² between feature sets.

    Attributes
    ----------
    set_names : names of the sets, in order.
    joint : :class:`BandedRidgeResult` of the model of all sets.
    reduced_r2 : (n_sets, n_voxels) test R² of the model without set ``b``.
    unique_r2 : (n_sets, n_voxels) ``joint.r2 - reduced_r2[b]``.
    unique_t, unique_p, unique_q : (n_sets, n_voxels) paired test of
        :func:`unique_variance_test` and its BH q over voxels, per set.
    shared_r2 : (n_voxels,) ``joint.r2 - Σ_b unique_r2[b]``.
    split_r2 : (n_sets, n_voxels) product-measure split of the joint R².
    reduced : the reduced models' results (without predictions).
    fdr_alpha : level used for ``significant``.
    """

    set_names: tuple[str, ...]
    joint: BandedRidgeResult
    reduced_r2: np.ndarray
    unique_r2: np.ndarray
    unique_t: np.ndarray
    unique_p: np.ndarray
    unique_q: np.ndarray
    shared_r2: np.ndarray
    reduced: list[BandedRidgeResult]
    fdr_alpha: float

    @property
    def split_r2(self) -> np.ndarray:
        return self.joint.split_r2

    @property
    def significant(self) -> np.ndarray:
        """(n_sets, n_voxels) bool: unique contribution with q < ``fdr_alpha``."""
        return below_fdr_level(self.unique_q, self.fdr_alpha)

    def metadata(self) -> dict[str, Any]:
        return {
            "SetLabels": list(self.set_names),
            "UniqueTest": (
                "one-sided Williams t-test of r(y, joint) > r(y, model without the set) on the test images "
                "(Steiger 1980)"
            ),
            "FDR": "Benjamini-Hochberg over voxels, per set",
            "FDRAlpha": self.fdr_alpha,
            "JointModel": self.joint.metadata(),
        }


def variance_partitioning(
    X_train: Sequence,
    Y_train: Any,
    X_test: Sequence,
    Y_test: Any,
    *,
    set_names: Sequence[str] | None = None,
    ratio_step: float | None = None,
    ratio_span: float = DEFAULT_RATIO_SPAN,
    fdr_alpha: float = DEFAULT_FDR_LEVEL,
    **fit_kw: Any,
) -> PartitionResult:
    """Unique and shared test-set R² of two or more feature sets, per voxel.

    Fits the joint banded model of all sets and, for each set, the banded
    model of the others, with the same split, folds, alpha grid and
    band-ratio step (``ratio_step`` default: that of the joint model's number
    of sets, so every model of a partitioning searches the same ratios).

    Parameters
    ----------
    X_train, X_test : sequences of (n, p_b) arrays, one per set (at least 2).
    Y_train, Y_test : (n, v) responses.
    set_names : optional names (default ``set1``, ``set2``, …).
    fdr_alpha : BH level recorded for :attr:`PartitionResult.significant`.
    fit_kw : passed to :func:`fit_banded_ridge` (alphas, n_folds, groups,
        cv_score, standardize, gram, precision, device, mem_gb, seed, progress).
        ``cv_score`` defaults to ``'r2'`` here: R² is what is partitioned, and
        a model chosen by r may take a tiny penalty where it predicts nothing
        (r ignores the predictions' scale), whose very negative test R² would
        inflate the other sets' unique R².

    Returns
    -------
    PartitionResult
    """
    X_train, X_test = list(X_train), list(X_test)
    names, step = _check_partitioning(X_train, X_test, set_names, ratio_step, fdr_alpha, fit_kw)
    fit_kw.setdefault("cv_score", "r2")
    y_test = np.asarray(Y_test.detach().cpu() if isinstance(Y_test, torch.Tensor) else Y_test)
    if y_test.ndim == 1:
        y_test = y_test[:, None]
    fit_kw.update(ratio_step=step, ratio_span=ratio_span, return_predictions=True)
    joint = fit_banded_ridge(X_train, Y_train, X_test, Y_test, **fit_kw)
    n_sets, n_voxels = len(X_train), joint.r.size
    reduced_r2 = np.empty((n_sets, n_voxels), np.float32)
    unique_t = np.empty((n_sets, n_voxels))
    unique_p = np.empty((n_sets, n_voxels))
    reduced = []
    for b in range(n_sets):
        keep = [i for i in range(n_sets) if i != b]
        red = fit_banded_ridge([X_train[i] for i in keep], Y_train, [X_test[i] for i in keep], Y_test, **fit_kw)
        reduced_r2[b] = red.r2
        unique_t[b], unique_p[b] = unique_variance_test(y_test, joint.predictions, red.predictions)
        red.predictions = None
        reduced.append(red)
    unique_r2 = (joint.r2[None, :] - reduced_r2).astype(np.float32)
    unique_q = np.stack([_stats.fdr_bh(unique_p[b], alpha=fdr_alpha) for b in range(n_sets)])
    shared = (joint.r2 - unique_r2.sum(0)).astype(np.float32)
    return PartitionResult(
        set_names=names,
        joint=joint,
        reduced_r2=reduced_r2,
        unique_r2=unique_r2,
        unique_t=unique_t.astype(np.float32),
        unique_p=unique_p.astype(np.float32),
        unique_q=unique_q.astype(np.float32),
        shared_r2=shared,
        reduced=reduced,
        fdr_alpha=float(fdr_alpha),
    )


def _check_partitioning(
    X_train: list,
    X_test: list,
    set_names: Sequence[str] | None,
    ratio_step: float | None,
    fdr_alpha: float,
    fit_kw: dict[str, Any],
) -> tuple[tuple[str, ...], float]:
    """The sets' names and the ratio step of every model of a partitioning, after checking the arguments."""
    n_sets = len(X_train)
    if n_sets < 2 or len(X_test) != n_sets:
        raise ValueError("variance partitioning needs at least two feature sets, the same in train and test")
    if not 0.0 < fdr_alpha < 1.0:
        raise ValueError(f"fdr_alpha must be in (0, 1), got {fdr_alpha!r}")
    for key in ("band_weights", "return_predictions"):
        if key in fit_kw:
            raise ValueError(f"{key} is set by variance_partitioning")
    names = tuple(set_names) if set_names is not None else tuple(f"set{i + 1}" for i in range(n_sets))
    if len(names) != n_sets or len(set(names)) != n_sets:
        raise ValueError(f"set_names must be {n_sets} distinct names, got {names!r}")
    return names, default_ratio_step(n_sets) if ratio_step is None else ratio_step
