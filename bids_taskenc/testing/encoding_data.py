"""Array-level encoding data (no BIDS): the benchmarks' and the CUDA tests' ridge problems."""

from __future__ import annotations

import numpy as np


def correlated_encoding_data(n: int, p: int, v: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Correlated features (decaying spectrum, like CNN latents) and responses of mixed SNR.

    Voxel ``j``'s signal-to-noise amplitude falls geometrically from 1 to 0.02
    across the ``v`` voxels, so the alpha chosen per voxel spans the grid.

    Returns
    -------
    X : ndarray, shape (n, p), float32
    Y : ndarray, shape (n, v), float32
    """
    rng = np.random.default_rng(seed)
    k = min(p, 256)
    basis = rng.standard_normal((k, p)).astype(np.float32) / np.sqrt(k)
    latent = rng.standard_normal((n, k)).astype(np.float32) * np.geomspace(3.0, 0.1, k).astype(np.float32)
    X = latent @ basis + 0.3 * rng.standard_normal((n, p)).astype(np.float32)
    W = rng.standard_normal((p, v), dtype=np.float32) / np.sqrt(p)
    signal = X @ W
    signal /= signal.std(0) + 1e-12
    snr = np.geomspace(1.0, 0.02, v).astype(np.float32)
    Y = snr * signal + rng.standard_normal((n, v), dtype=np.float32)
    return X, Y.astype(np.float32)


def null_signal_data(
    n: int = 1200, p: int = 300, v: int = 400, r2_signal: float = 0.08, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Half null voxels, half with population R² ``r2_signal`` (issue 23's alpha-criterion simulation).

    Features have a decaying spectrum (SD 1 to 0.05 over the columns); the signal voxels are dense linear
    functions of them, scaled so the signal's share of the variance is ``r2_signal``.

    Returns
    -------
    X : ndarray, shape (n, p), float32
    Y : ndarray, shape (n, v), float32
    is_signal : ndarray of bool, shape (v,); the first ``v // 2`` voxels are null
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) * np.geomspace(1.0, 0.05, p)
    Y = rng.standard_normal((n, v))
    half = v // 2
    signal = X @ rng.standard_normal((p, v - half))
    signal /= signal.std(0)
    Y[:, half:] = np.sqrt(r2_signal) * signal + np.sqrt(1.0 - r2_signal) * Y[:, half:]
    return X.astype(np.float32), Y.astype(np.float32), np.arange(v) >= half


def near_collinear_predictions(
    n: int = 737, v: int = 20000, r_ab: float = 0.99999, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Null responses y and two predictions A, B correlated ``r_ab`` with each other and equally unrelated to y.

    Returns y, A, B, each (n, v) float32 (the contrasts' test responses and predictions).
    """
    rng = np.random.default_rng(seed)
    y = rng.standard_normal((n, v)).astype(np.float32)
    common = rng.standard_normal((n, v))
    spread = np.sqrt((1.0 - r_ab) / r_ab)
    a = (common + spread * rng.standard_normal((n, v))).astype(np.float32)
    b = (common + spread * rng.standard_normal((n, v))).astype(np.float32)
    return y, a, b


def blocked_design(
    n_runs: int = 24, trials: int = 37, block: int = 7, p: int = 40, v: int = 300, phi: float = 0.9, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A blocked design with temporally autocorrelated noise and no signal (issue 23's held-out split case).

    Runs of ``trials`` trials; the features are shared within blocks of ``block`` consecutive trials (plus
    30 % trial-level jitter in SD), and the responses are AR(1) noise over the trials of a run (coefficient
    ``phi``, restarting each run).

    Returns
    -------
    X : ndarray, shape (n_runs * trials, p), float32
    Y : ndarray, shape (n_runs * trials, v), float32
    run : ndarray of int, shape (n_runs * trials,)
    """
    rng = np.random.default_rng(seed)
    n = n_runs * trials
    trial = np.arange(n) % trials
    run = np.arange(n) // trials
    blocks_per_run = -(-trials // block)
    block_id = run * blocks_per_run + trial // block
    X = rng.standard_normal((n_runs * blocks_per_run, p))[block_id] + 0.3 * rng.standard_normal((n, p))
    innovations = rng.standard_normal((n, v))
    Y = np.empty_like(innovations)
    for i in range(n):
        first = trial[i] == 0
        Y[i] = innovations[i] if first else phi * Y[i - 1] + np.sqrt(1.0 - phi**2) * innovations[i]
    return X.astype(np.float32), Y.astype(np.float32), run
