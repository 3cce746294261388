"""Splits of samples (stimuli) into train/test sets and cross-validation folds.

All functions return sorted ``int64`` index arrays and are deterministic given
``seed``, so a split can be written to a sidecar and reproduced.
"""

from __future__ import annotations

import numpy as np


def _check_n_samples(n_samples: int) -> int:
    if isinstance(n_samples, bool) or int(n_samples) != n_samples or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
    return int(n_samples)


def train_test_split_indices(
    n_samples: int, test_fraction: float = 0.15, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Random held-out split of ``n_samples`` samples.

    Parameters
    ----------
    n_samples : int
        Number of samples (stimuli).
    test_fraction : float in (0, 1)
        Fraction of samples in the test set; the test set holds
        ``round(test_fraction * n_samples)`` samples, at least 1, and the
        training set at least 1.
    seed : int
        Seed of :func:`numpy.random.default_rng`.

    Returns
    -------
    train : ndarray of int64, shape (n_train,)
        Sorted indices of the training samples.
    test : ndarray of int64, shape (n_test,)
        Sorted indices of the test samples, disjoint from ``train``.
    """
    n = _check_n_samples(n_samples)
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    if n < 2:
        raise ValueError(f"need at least 2 samples to split, got {n}")
    n_test = min(max(int(round(test_fraction * n)), 1), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_test:]).astype(np.int64), np.sort(order[:n_test]).astype(np.int64)


def grouped_train_test_split_indices(
    groups: np.ndarray, test_fraction: float = 0.15, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Held-out split of whole groups (runs or sessions): no group has samples on both sides.

    The groups are put in a random order (``seed``) and taken into the test set
    one by one until it holds at least ``round(test_fraction * n)`` samples;
    the last group is kept out again when that brings the test size closer to
    the target. The test set holds at least one group and the training set at
    least one.

    Parameters
    ----------
    groups : array of shape (n_samples,)
        A group label per sample (any sortable dtype); at least two distinct.
    test_fraction : float in (0, 1)
        Target fraction of samples in the test set.
    seed : int
        Seed of :func:`numpy.random.default_rng`.

    Returns
    -------
    train, test : sorted int64 index arrays, disjoint, covering ``range(n_samples)``.
    """
    groups = np.asarray(groups)
    if groups.ndim != 1 or groups.shape[0] < 2:
        raise ValueError(f"groups must be a 1-D array of at least 2 samples, got shape {groups.shape}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    labels, inverse, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    if labels.size < 2:
        raise ValueError("groups must hold at least two distinct labels to hold out whole groups")
    target = test_fraction * groups.shape[0]
    order = np.random.default_rng(seed).permutation(labels.size)
    taken = np.cumsum(sizes[order])
    k = min(int(np.searchsorted(taken, target)) + 1, labels.size - 1)  # groups in the test set
    if k > 1 and abs(taken[k - 2] - target) <= abs(taken[k - 1] - target):
        k -= 1
    is_test = np.isin(inverse, order[:k])
    return np.flatnonzero(~is_test).astype(np.int64), np.flatnonzero(is_test).astype(np.int64)


def kfold_indices(
    n_samples: int, n_folds: int = 7, seed: int = 0, groups: np.ndarray | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Cross-validation folds over ``n_samples`` training samples.

    Without ``groups``: shuffled k-fold. The samples are permuted with
    ``seed`` and cut into ``n_folds`` contiguous chunks whose sizes differ by at
    most one (as :func:`numpy.array_split`); each chunk is one validation set.

    With ``groups``: leave-one-group-out (e.g. one session per fold); there are
    as many folds as distinct groups and ``n_folds`` and ``seed`` are ignored.
    Folds come in the sorted order of the group labels.

    Parameters
    ----------
    n_samples : int
        Number of training samples.
    n_folds : int
        Number of folds, ``2 <= n_folds <= n_samples``.
    seed : int
        Seed of the shuffle.
    groups : array of shape (n_samples,), optional
        A group label per sample (any sortable dtype). At least two groups.

    Returns
    -------
    folds : list of (train, validation) pairs
        Sorted ``int64`` index arrays; the validation sets partition
        ``range(n_samples)``.
    """
    n = _check_n_samples(n_samples)
    if groups is not None:
        groups = np.asarray(groups)
        if groups.ndim != 1 or groups.shape[0] != n:
            raise ValueError(f"groups must have shape ({n},), got {groups.shape}")
        labels, inverse = np.unique(groups, return_inverse=True)
        if labels.size < 2:
            raise ValueError("groups must hold at least two distinct labels for leave-one-group-out")
        folds = []
        for g in range(labels.size):
            val = np.flatnonzero(inverse == g)
            train = np.flatnonzero(inverse != g)
            folds.append((train.astype(np.int64), val.astype(np.int64)))
        return folds
    if isinstance(n_folds, bool) or int(n_folds) != n_folds or n_folds < 2:
        raise ValueError(f"n_folds must be an integer >= 2, got {n_folds!r}")
    if n_folds > n:
        raise ValueError(f"n_folds={n_folds} is larger than the number of training samples ({n})")
    order = np.random.default_rng(seed).permutation(n)
    folds = []
    for chunk in np.array_split(order, int(n_folds)):
        mask = np.zeros(n, dtype=bool)
        mask[chunk] = True
        folds.append((np.flatnonzero(~mask).astype(np.int64), np.flatnonzero(mask).astype(np.int64)))
    return folds


def validation_split_indices(
    n_samples: int, validation_fraction: float = 0.15, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """One random training/validation split of ``n_samples`` training samples, as a one-fold CV.

    The scheme of Wang et al.'s (2019) code (scikit-learn's ``ShuffleSplit(test_size=0.15)`` made into a
    ``PredefinedSplit``): ``ceil(validation_fraction * n_samples)`` samples, drawn with ``seed``, validate every
    alpha; the rest train. Their code drew it unseeded; here it is seeded so the choice of alpha can be
    reproduced.

    Returns
    -------
    folds : list of one (train, validation) pair of sorted ``int64`` index arrays, disjoint, covering
        ``range(n_samples)``.
    """
    n = _check_n_samples(n_samples)
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction!r}")
    n_val = int(np.ceil(validation_fraction * n))
    if n_val < 1 or n - n_val < 1:
        raise ValueError(f"cannot hold out {validation_fraction:g} of {n} samples for validation and train on the rest")
    order = np.random.default_rng(seed).permutation(n)
    return [(np.sort(order[n_val:]).astype(np.int64), np.sort(order[:n_val]).astype(np.int64))]
