"""False discovery rate: the one BH implementation, the one threshold rule and the default level.

A voxel is significant when its q is *below* the level (``q < level``; NaN q never is). BH's own rule rejects
``q <= level``; the two differ only at exact ties and ``<`` never rejects more.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import overload

import numpy as np
from numpy.typing import ArrayLike

#: FDR level when none is given (``--fdr-alpha``'s default at the participant level).
DEFAULT_FDR_LEVEL = 0.05


def fdr_bh(p: ArrayLike, alpha: float = DEFAULT_FDR_LEVEL) -> np.ndarray:
    """Benjamini–Hochberg FDR q-values (adjusted p-values), NaN-safe.

    Thin wrapper of :func:`statsmodels.stats.multitest.multipletests` with
    ``method='fdr_bh'``. NaN p-values stay NaN and do not count as tests.
    Rejecting ``q <= alpha`` (BH's rule) controls the false discovery rate at
    ``alpha`` under independence or positive dependence of the tests; the app
    rejects ``q < alpha`` everywhere (:func:`below_fdr_level`), which differs
    only at exact ties and never rejects more.

    Parameters
    ----------
    p : array of shape (n_tests,)
        p-values in [0, 1] (NaN allowed).
    alpha : float in (0, 1)
        FDR level; q-values do not depend on it, it is validated and passed on.

    Returns
    -------
    q : ndarray of float64, shape (n_tests,)

    Examples
    --------
    >>> fdr_bh([0.01, 0.04, float("nan")]).tolist()[:2]
    [0.02, 0.04]
    """
    from statsmodels.stats.multitest import multipletests

    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"p must be 1-D, got shape {p.shape}")
    finite = ~np.isnan(p)
    if np.any((p[finite] < 0) | (p[finite] > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    q = np.full(p.shape, np.nan)
    if finite.any():
        q[finite] = multipletests(p[finite], alpha=alpha, method="fdr_bh")[1]
    return q


def below_fdr_level(q: ArrayLike, level: ArrayLike) -> np.ndarray:
    """Boolean array: where ``q`` is below the FDR ``level`` (NaN q: False).

    ``level`` may be an array that broadcasts against ``q`` (one level per map).

    >>> below_fdr_level([0.01, 0.05, float("nan")], 0.05).tolist()
    [True, False, False]
    """
    return np.less(np.asarray(q), level)


@overload
def recorded_fdr_level(sidecar: Mapping, default: float) -> float: ...
@overload
def recorded_fdr_level(sidecar: Mapping, default: None = None) -> float | None: ...
def recorded_fdr_level(sidecar: Mapping, default: float | None = None) -> float | None:
    """The FDR level a sidecar records (its numeric ``FDRLevel``); ``default`` when it records none.

    A boolean or a string is no level.

    >>> recorded_fdr_level({"FDRLevel": 0.01}), recorded_fdr_level({"FDRLevel": "n/a"})
    (0.01, None)
    """
    level = sidecar.get("FDRLevel")
    if isinstance(level, bool) or not isinstance(level, (int, float)):
        return default
    return float(level)
