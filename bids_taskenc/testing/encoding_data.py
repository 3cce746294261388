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
