"""The band-weight grid of banded ridge: which penalty ratios between feature sets are searched."""

from __future__ import annotations

import itertools

import numpy as np

#: Span of the band-penalty ratios in decades each side of 1 (ratios 1/100 … 100).
DEFAULT_RATIO_SPAN = 2.0


def default_ratio_step(n_sets: int) -> float:
    """Decades between neighbouring band-penalty ratios: 0.5 for two sets, 1 for more."""
    return 0.5 if n_sets <= 2 else 1.0


def band_weight_grid(n_sets: int, span: float = DEFAULT_RATIO_SPAN, step: float | None = None) -> np.ndarray:
    """Band weights ``γ`` (rows on the simplex) whose penalty ratios tile a log grid.

    Each band's penalty exponent ``e_b`` (``λ_b ∝ 10^e_b``) takes the values
    ``0, step, …, span``; combinations are kept when ``min_b e_b = 0`` (a
    common shift of every exponent is absorbed by ``α``), and
    ``γ_b ∝ 10^-e_b``. For two sets that is ``2·span/step + 1`` ratios
    ``λ_1/λ_2`` from ``10^-span`` to ``10^span``; for three sets with a decade
    step, 19 points. The equal weights come first (himalaya's random search
    starts there too), then the order of the exponent tuples.

    Parameters
    ----------
    n_sets : int >= 1
    span : float > 0, decades
    step : float > 0, decades; default :func:`default_ratio_step`

    Returns
    -------
    gammas : ndarray (n_grid, n_sets), float64, rows summing to 1
    """
    if isinstance(n_sets, bool) or int(n_sets) != n_sets or n_sets < 1:
        raise ValueError(f"n_sets must be a positive integer, got {n_sets!r}")
    n_sets = int(n_sets)
    if n_sets == 1:
        return np.ones((1, 1))
    step = default_ratio_step(n_sets) if step is None else float(step)
    if not (span > 0 and step > 0):
        raise ValueError(f"span and step must be positive, got {span!r} and {step!r}")
    n_steps = int(round(span / step))
    if n_steps < 1 or abs(n_steps * step - span) > 1e-9 * span:
        raise ValueError(f"span ({span}) must be a whole number of steps ({step})")
    levels = np.arange(n_steps + 1) * step
    rows = [e for e in itertools.product(levels, repeat=n_sets) if min(e) == 0.0]
    rows.sort(key=lambda e: (max(e) > 0, e))
    gammas = 10.0 ** -np.asarray(rows)
    return gammas / gammas.sum(1, keepdims=True)


def check_band_weights(band_weights, n_sets: int) -> np.ndarray:
    """Validate a (n_grid, n_sets) array of band weights; rows are rescaled to sum to 1."""
    g = np.asarray(band_weights, dtype=np.float64)
    if g.ndim == 1 and n_sets == 1:
        g = g[:, None]
    if g.ndim != 2 or g.shape[1] != n_sets or g.shape[0] < 1:
        raise ValueError(f"band_weights must have shape (n_grid, {n_sets}), got {g.shape}")
    if not np.isfinite(g).all() or (g < 0).any() or (g.sum(1) <= 0).any():
        raise ValueError("band weights must be finite, non-negative, and not all 0 in a row")
    return g / g.sum(1, keepdims=True)
