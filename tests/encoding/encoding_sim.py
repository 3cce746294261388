"""Simulated data for the encoding-engine tests (imported as a plain module)."""

from __future__ import annotations

import numpy as np


def simulate(n_train=120, n_test=40, p=15, v=12, seed=0, noise=(0.5, 8.0), mean=3.0):
    """Correlated features with a non-zero mean, linear responses with voxel-specific noise.

    Voxels range from well to barely predicted so that their best alphas differ.
    Returns float64 features and float32 responses: X_train, Y_train, X_test, Y_test.
    """
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    mix = rng.standard_normal((p, p)) / np.sqrt(p) + np.eye(p)
    X = rng.standard_normal((n, p)) @ mix * rng.uniform(0.5, 3.0, p) + mean
    W = rng.standard_normal((p, v))
    Y = X @ W / np.sqrt(p) + rng.standard_normal((n, v)) * np.geomspace(*noise, v) + rng.normal(0, 5, v)
    Y = Y.astype(np.float32)
    return X[:n_train], Y[:n_train], X[n_train:], Y[n_train:]
