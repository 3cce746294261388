"""Held-out statistics per voxel: Pearson r, R², p-values and FDR q-values.

NumPy functions (:func:`pearson_r`, :func:`r2_score`, :func:`analytic_p`,
:func:`fdr_bh`, whose home is :mod:`bids_taskenc.core.fdr`) are the public face; the ``*_torch`` kernels do the same on
device tensors inside :func:`~bids_taskenc.encoding.fit_encoding_model`.

Conventions
-----------
* r and R² are computed per column (voxel) over samples (rows).
* R² = 1 - SS_res / SS_tot with SS_tot taken around the evaluated set's own
  mean (as :func:`sklearn.metrics.r2_score`); it is negative for predictions
  worse than that mean.
* p-values are one-sided (H1: r > 0) by default: a voxel is only of interest
  when the model predicts it, not when it anti-predicts it. ``sides='two-sided'``
  (H1: r != 0, :func:`scipy.stats.pearsonr`'s default) is what Wang et al.'s
  (2019) code used (:data:`P_VALUE_SIDES`).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import stats as _sps

from ..core.fdr import fdr_bh as fdr_bh  # the one BH; re-exported for the engine's callers
from .options import P_VALUE_SIDES as P_VALUE_SIDES  # the alternatives of the p-values (torch-free home)


def check_sides(sides: str) -> str:
    if sides not in P_VALUE_SIDES:
        raise ValueError(f"sides must be one of {', '.join(P_VALUE_SIDES)}, got {sides!r}")
    return sides


def _as_2d_pair(a, b) -> tuple[np.ndarray, np.ndarray, bool]:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    vector = a.ndim == 1
    if vector:
        a, b = a[:, None], b[:, None]
    if a.ndim != 2:
        raise ValueError(f"a and b must be 1-D or 2-D (n_samples, n_columns), got ndim={a.ndim}")
    return a, b, vector


def pearson_r(a, b) -> np.ndarray:
    """Column-wise Pearson correlation, computed in float64.

    Parameters
    ----------
    a, b : array of shape (n_samples, n_columns) or (n_samples,)

    Returns
    -------
    r : ndarray of float64, shape (n_columns,) (or a scalar array for 1-D input)
        NaN where a column of ``a`` or ``b`` is constant.
    """
    a, b, vector = _as_2d_pair(a, b)
    ac = a - a.mean(0)
    bc = b - b.mean(0)
    denom = np.sqrt((ac * ac).sum(0) * (bc * bc).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(denom > 0, (ac * bc).sum(0) / np.where(denom > 0, denom, 1.0), np.nan)
    r = np.clip(r, -1.0, 1.0)
    return r[0] if vector else r


def r2_score(y_true, y_pred) -> np.ndarray:
    """Column-wise coefficient of determination, 1 - SS_res/SS_tot, in float64.

    Parameters
    ----------
    y_true, y_pred : array of shape (n_samples, n_columns) or (n_samples,)

    Returns
    -------
    r2 : ndarray of float64, shape (n_columns,)
        NaN where ``y_true`` is constant.
    """
    t, p, vector = _as_2d_pair(y_true, y_pred)
    ss_tot = ((t - t.mean(0)) ** 2).sum(0)
    ss_res = ((t - p) ** 2).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = np.where(ss_tot > 0, 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0), np.nan)
    return r2[0] if vector else r2


def analytic_p(r, n: int, sides: str = "one-sided") -> np.ndarray:
    """p-value of Pearson correlations under the bivariate-normal null, one- or two-sided.

    ``t = r * sqrt(n - 2) / sqrt(1 - r**2)`` with ``n - 2`` degrees of freedom;
    one-sided ``p = P(T >= t)`` (:func:`scipy.stats.pearsonr` with
    ``alternative='greater'``), two-sided ``p = 2 P(T >= |t|)`` (its default).

    Parameters
    ----------
    r : array of shape (n_voxels,)
        Correlations in [-1, 1].
    n : int
        Number of samples each correlation was computed on (>= 3).
    sides : {'one-sided', 'two-sided'}
        The alternative (:data:`P_VALUE_SIDES`).

    Returns
    -------
    p : ndarray of float64, shape (n_voxels,)
        In [0, 1]; 1 where ``r`` is NaN.
    """
    check_sides(sides)
    if int(n) != n or n < 3:
        raise ValueError(f"n must be an integer >= 3 for an analytic p-value, got {n!r}")
    r = np.clip(np.asarray(r, dtype=np.float64), -1.0, 1.0)
    df = float(n) - 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        t = r * np.sqrt(df) / np.sqrt((1.0 - r) * (1.0 + r))
    p = _sps.t.sf(t, df) if sides == "one-sided" else np.minimum(2.0 * _sps.t.sf(np.abs(t), df), 1.0)
    # r = ±1 gives t = ±inf, which sf maps to 0 and 1 already; NaN r -> no evidence.
    return np.where(np.isnan(r), 1.0, p)


def fdr_tests_needed_at_floor(p_floor: float, n_tests: int, alpha: float) -> float:
    """How many tests must reach the smallest attainable p for BH to declare any.

    BH at ``alpha`` rejects the ``k`` smallest of ``m`` p-values when
    ``p_(k) <= k alpha / m``; with every p at least ``p_floor`` (``1/(N+1)``
    for N permutations, ``2/(B+1)`` for a two-sided bootstrap with B
    resamples) that needs ``k >= m p_floor / alpha``. A value above 1 means a
    lone true voxel can never be declared, however strong: the resolution of
    the p-values, not the data, limits what FDR finds. 0 for a continuous p.
    """
    return float(n_tests) * float(p_floor) / float(alpha)


def williams_t(r_ya, r_yb, r_ab, n: int, alternative: str = "two-sided") -> tuple[np.ndarray, np.ndarray]:
    """Williams' t of r(y, a) = r(y, b) for correlations sharing ``y`` (Steiger 1980, eq. 7).

    ``t = (r_ya − r_yb) · sqrt((n − 1)(1 + r_ab) / (2 (n − 1)/(n − 3) |R| + r̄² (1 − r_ab)³))``
    with ``|R| = 1 − r_ya² − r_yb² − r_ab² + 2 r_ya r_yb r_ab`` and
    ``r̄ = (r_ya + r_yb) / 2``, on ``n − 3`` degrees of freedom.

    Parameters
    ----------
    r_ya, r_yb, r_ab : array_like, shape (n_voxels,)
        Correlations over the same ``n`` samples.
    n : int
        Samples (>= 4).
    alternative : {'two-sided', 'greater'}
        H1: r_ya != r_yb, or r_ya > r_yb.

    Returns
    -------
    t : ndarray of float64
        Positive where ``r_ya > r_yb``; 0 where the two predictions are
        indistinguishable (|R| and 1 − r_ab both 0, e.g. identical predictions).
    p : ndarray of float64
        Two-sided ``2 P(T_{n−3} > |t|)``, or one-sided ``P(T_{n−3} > t)``.
    """
    if int(n) != n or n < 4:
        raise ValueError(f"Williams' t needs n >= 4 samples, got {n!r}")
    r_ya, r_yb, r_ab = (np.clip(np.asarray(x, dtype=np.float64), -1.0, 1.0) for x in (r_ya, r_yb, r_ab))
    det = np.clip(1.0 - r_ya**2 - r_yb**2 - r_ab**2 + 2.0 * r_ya * r_yb * r_ab, 0.0, None)
    rbar = (r_ya + r_yb) / 2.0
    denom = 2.0 * (n - 1) / (n - 3) * det + rbar**2 * (1.0 - r_ab) ** 3
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(denom > 0, (r_ya - r_yb) * np.sqrt((n - 1) * (1.0 + r_ab) / np.where(denom > 0, denom, 1.0)), 0.0)
    if alternative == "greater":
        return t, _sps.t.sf(t, n - 3)
    if alternative != "two-sided":
        raise ValueError(f"alternative must be 'two-sided' or 'greater', got {alternative!r}")
    return t, 2.0 * _sps.t.sf(np.abs(t), n - 3)


# --------------------------------------------------------------------------- torch kernels


def constant_tolerance(a: torch.Tensor) -> torch.Tensor:
    """Norm [n_columns] under which a centred column of ``a`` [n, n_columns] is rounding noise.

    Centring a constant column ``c`` leaves residues of about ``eps * |c|`` per
    sample; a column whose centred norm stays within ``16 eps sqrt(n) max|a|``
    carries no information at the working precision and counts as constant.
    """
    return 16.0 * torch.finfo(a.dtype).eps * (a.shape[0] ** 0.5) * a.abs().amax(0)


def varying_columns_torch(a: torch.Tensor, centred_norm: torch.Tensor) -> torch.Tensor:
    """Bool [n_columns]: True where column of ``a`` [n, n_columns] is not constant.

    A column whose values are all equal is constant exactly (``max == min``, a
    comparison no reduction order can change), so a constant voxel gets r = 0
    and p = 1 on every CPU and GPU. A column that varies only within rounding
    (centred norm ``centred_norm`` under :func:`constant_tolerance`) counts as
    constant too.
    """
    return (a.amax(0) > a.amin(0)) & (centred_norm > constant_tolerance(a))


def unit_columns_torch(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre each column and scale it to unit Euclidean norm.

    Parameters
    ----------
    a : tensor of shape (n_samples, n_columns)

    Returns
    -------
    z : tensor, same shape; zero columns where ``a`` is constant
    ok : bool tensor of shape (n_columns,); False where ``a`` is constant
        (to rounding, see :func:`constant_tolerance`)
    """
    ac = a - a.mean(0, keepdim=True)
    norm = torch.linalg.vector_norm(ac, dim=0)
    ok = varying_columns_torch(a, norm)
    ac = torch.where(ok, ac, torch.zeros_like(ac))
    return ac / torch.where(ok, norm, torch.ones_like(norm)), ok


def pearson_torch(y: torch.Tensor, pred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pearson r per column, with the unit columns it was computed from.

    Parameters
    ----------
    y, pred : tensors of shape (n_samples, n_columns)

    Returns
    -------
    r : (n_columns,), 0 where ``y`` or ``pred`` is constant
    ok : (n_columns,) bool, False where ``y`` or ``pred`` is constant
    yz, pz : (n_samples, n_columns), see :func:`unit_columns_torch`
    """
    yz, y_ok = unit_columns_torch(y)
    pz, p_ok = unit_columns_torch(pred)
    r = (yz * pz).sum(0).clamp_(-1.0, 1.0)
    return r, y_ok & p_ok, yz, pz


def r2_torch(y: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """R² = 1 - SS_res/SS_tot per column [n_columns]; 0 where ``y`` is constant (to rounding).

    ``y`` and ``pred`` [n_samples, n_columns] must be in the same units and
    offset (SS_tot is taken around ``y``'s own mean).
    """
    yc = y - y.mean(0, keepdim=True)
    ss_tot = (yc * yc).sum(0)
    resid = y - pred
    ss_res = (resid * resid).sum(0)
    ok = varying_columns_torch(y, torch.sqrt(ss_tot))
    return torch.where(ok, 1.0 - ss_res / torch.where(ok, ss_tot, torch.ones_like(ss_tot)), torch.zeros_like(ss_tot))


def permutation_p_floor(n_permutations: int, groups=None) -> float:
    """The smallest permutation p-value reachable: ``1/(N+1)`` for free shuffles; with circular shifts within
    ``groups`` there are only ``prod(group sizes)`` distinct permutations, so about one over that when it is
    smaller (one held-out run of 50 images: 1/50, whatever ``N``).

    >>> permutation_p_floor(999)
    0.001
    >>> permutation_p_floor(999, ["a"] * 50)
    0.02
    """
    floor = 1.0 / (n_permutations + 1)
    if groups is None:
        return floor
    _, sizes = np.unique(np.asarray(groups), return_counts=True)
    log_distinct = float(np.log(sizes).sum())
    return max(floor, float(np.exp(-log_distinct)))


def make_permutations(n_samples: int, n_permutations: int, seed: int, groups=None) -> np.ndarray:
    """``n_permutations`` seeded permutations of ``range(n_samples)``, shape (n_permutations, n_samples).

    Without ``groups``: free shuffles. With ``groups`` (one label per sample, e.g. the run of each test
    image, samples in time order within a group): each permutation shifts the samples of every group
    circularly by its own random offset, so the predictions keep their temporal structure within a run and
    the null respects autocorrelated noise (a blocked design's null is calibrated with a grouped test split
    and circular shifts, not with free shuffles: docs/statistics.md).
    """
    rng = np.random.default_rng(seed)
    if groups is None:
        base = np.broadcast_to(np.arange(n_samples), (n_permutations, n_samples))
        return rng.permuted(base, axis=1)
    groups = np.asarray(groups)
    if groups.shape != (n_samples,):
        raise ValueError(f"groups must have shape ({n_samples},), got {groups.shape}")
    perms = np.empty((n_permutations, n_samples), np.int64)
    for label in np.unique(groups):
        members = np.flatnonzero(groups == label)
        shifts = rng.integers(0, members.size, n_permutations)
        perms[:, members] = members[(np.arange(members.size) + shifts[:, None]) % members.size]
    return perms


def permutation_counts_torch(
    yz: torch.Tensor,
    pz: torch.Tensor,
    r_obs: torch.Tensor,
    perms: torch.Tensor,
    max_elements: int,
    tol: float | None = None,
    sides: str = "one-sided",
) -> torch.Tensor:
    """How often a permuted correlation reaches the observed one, per column (in absolute value when two-sided).

    The null correlations pair the true responses with the predictions of the
    same column in a permuted sample order, the same permutations for every
    column (which keeps the spatial dependence between voxels intact).

    Parameters
    ----------
    yz, pz : tensors of shape (n_samples, n_columns)
        Columns centred and of unit norm (:func:`unit_columns_torch`).
    r_obs : tensor of shape (n_columns,)
        ``(yz * pz).sum(0)``.
    perms : int64 tensor of shape (n_permutations, n_samples)
        On the same device.
    max_elements : int
        Largest ``n_perm_batch * n_samples * n_columns`` held at once.
    tol : float, optional
        A null correlation counts when ``r_null >= r_obs - tol``; the default,
        ``64 * eps`` of the dtype, keeps rounding from turning a tie into a
        miss (the p-value can only grow, never shrink, through it).
    sides : {'one-sided', 'two-sided'}
        Two-sided: ``|r_null| >= |r_obs| - tol``.

    Returns
    -------
    counts : int64 tensor of shape (n_columns,)
        ``#{b : r_null[b] >= r_obs - tol}`` (one-sided).
    """
    two_sided = check_sides(sides) == "two-sided"
    n_perm, n = perms.shape
    if tol is None:
        tol = 64.0 * torch.finfo(yz.dtype).eps
    threshold = ((r_obs.abs() if two_sided else r_obs) - tol).unsqueeze(0)
    per_perm = max(1, n * yz.shape[1])
    step = int(max(1, min(n_perm, max_elements // per_perm)))
    counts = torch.zeros(yz.shape[1], dtype=torch.int64, device=yz.device)
    for start in range(0, n_perm, step):
        idx = perms[start : start + step]
        null = (pz[idx] * yz.unsqueeze(0)).sum(1)
        counts += ((null.abs() if two_sided else null) >= threshold).sum(0)
    return counts


def dependent_r_contrast_t(r_y, r_pp, weights, n: int) -> tuple[np.ndarray, np.ndarray]:
    """t of ``Σ_j w_j r_j = 0`` for correlations ``r_j = r(y, P_j)`` sharing ``y``.

    ``t = Σ w_j r_j / sqrt(Σ_jk w_j w_k ψ_jk / n)`` with the Pearson–Filon
    covariance ``ψ_jk = r_jk (1 − ρ_j² − ρ_k²) − ρ_j ρ_k (1 − ρ_j² − ρ_k² −
    r_jk²) / 2`` (``ψ_jj = (1 − ρ_j²)²``), where ``ρ = r − w (w·r) / (w·w)`` are
    the correlations pooled under the null (Steiger's r̄ for a pair), on
    ``n − 3`` degrees of freedom (as Williams' t).

    Parameters
    ----------
    r_y : array, shape (k, n_voxels)
        Correlations of the responses with each of the k predictions.
    r_pp : array, shape (k, k, n_voxels)
        Correlations between the predictions (the diagonal is ignored: 1).
    weights : array, shape (k,)
        Contrast weights (+1/|A|, −1/|B|).
    n : int
        Samples (>= 4).

    Returns
    -------
    t, p : ndarrays of float64, shape (n_voxels,)
        p two-sided; t = 0, p = 1 where the variance vanishes.
    """
    if int(n) != n or n < 4:
        raise ValueError(f"the contrast t needs n >= 4 samples, got {n!r}")
    r_y = np.clip(np.asarray(r_y, dtype=np.float64), -1.0, 1.0)
    w = np.asarray(weights, dtype=np.float64)
    k = len(w)
    diff = np.tensordot(w, r_y, axes=1)
    rho = r_y - np.outer(w, diff) / (w @ w)
    var = np.zeros_like(diff)
    for j in range(k):
        for m in range(k):
            r_jm = 1.0 if j == m else np.clip(np.asarray(r_pp[j][m], dtype=np.float64), -1.0, 1.0)
            a, b = rho[j] ** 2, rho[m] ** 2
            var += w[j] * w[m] * (r_jm * (1.0 - a - b) - 0.5 * rho[j] * rho[m] * (1.0 - a - b - r_jm**2))
    var /= n
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(var > 0, diff / np.sqrt(np.where(var > 0, var, 1.0)), 0.0)
    return t, 2.0 * _sps.t.sf(np.abs(t), n - 3)
