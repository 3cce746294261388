"""Ridge penalty grids: which alphas the cross-validation searches, by name.

:data:`ALPHA_GRIDS` is the registry the command line (``--alpha-grid``), the settings and the docs read:

* ``fixed``: the grid given (``--alphas``, default :data:`~bids_taskenc.encoding.fit.DEFAULT_ALPHAS`, 17 values
  from 1 to 1e8), whatever the number of features;
* ``paper``: the rule of Wang et al.'s (2019) code (``ridge_cv`` in ariaaay/NeuralTaskonomy): 100 values,
  ``logspace(-8, ½·log10(p) + 8)`` for ``p`` features, so its end point grows with the feature count
  (1e8·√p: 4.5e9 for Taskonomy's 2048 features).

    >>> grid = alpha_grid("paper", n_features=100)
    >>> len(grid), float(grid[0]), float(grid[-1])
    (100, 1e-08, 1000000000.0)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Grid rule -> what it is (the parser's choices and help, the docs).
ALPHA_GRIDS = {
    "fixed": "the --alphas values, whatever the number of features",
    "paper": "100 values, logspace(-8, 0.5*log10(p) + 8) for p features (Wang et al. 2019's code)",
}

#: The paper's rule: decades below 1 and above sqrt(p), and the number of values.
PAPER_TOL = 8
PAPER_N_ALPHAS = 100


def paper_alphas(n_features: int) -> np.ndarray:
    """``logspace(-8, ½·log10(p) + 8, 100)``, float64 (n_alphas,): the grid of Wang et al.'s ``ridge_cv``."""
    if isinstance(n_features, bool) or int(n_features) != n_features or n_features < 1:
        raise ValueError(f"n_features must be a positive integer, got {n_features!r}")
    return np.logspace(-PAPER_TOL, 0.5 * np.log10(int(n_features)) + PAPER_TOL, PAPER_N_ALPHAS)


def alpha_grid(rule: str, n_features: int, alphas: Sequence[float] | None = None) -> np.ndarray:
    """The alphas (float64, (n_alphas,)) that ``rule`` searches for a space of ``n_features`` features.

    ``alphas`` is the grid of the ``fixed`` rule (required there, ignored by ``paper``).
    """
    if rule == "fixed":
        if alphas is None:
            raise ValueError("the fixed alpha grid needs its alphas")
        return np.asarray(alphas, dtype=np.float64)
    if rule == "paper":
        return paper_alphas(n_features)
    raise ValueError(f"alpha grid must be one of {', '.join(ALPHA_GRIDS)}, got {rule!r}")
