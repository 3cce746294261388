"""Task x task similarity of voxel maps, and its agreement across matrices.

Similarity is the cosine of two feature spaces' (thresholded) r maps over a
participant's analysed voxels (Wang et al. 2019). A map with no non-zero voxel
has cosine 0 with every other map (and 1 with itself).

The bootstrap over voxels never copies data: resampling voxels with
replacement is the same as weighting each voxel by how often it was drawn, so
a bootstrap similarity is a *weighted* cosine computed from the pairwise
products of the maps (:func:`bootstrap_similarities`).
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.stats import rankdata

_CHUNK = 64


def cosine_from_gram(gram: np.ndarray) -> np.ndarray:
    """Cosine similarity from Gram matrices.

    Parameters
    ----------
    gram : ndarray
        ``(..., F, F)`` inner products ``G_ij = sum_v w_v x_iv x_jv``.

    Returns
    -------
    ndarray
        ``(..., F, F)``; entries involving an all-zero map are 0, the diagonal is 1.
    """
    gram = np.asarray(gram, dtype=float)
    norm = np.sqrt(np.clip(np.diagonal(gram, axis1=-2, axis2=-1), 0, None))
    denom = norm[..., :, None] * norm[..., None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        sim = np.where(denom > 0, gram / np.where(denom > 0, denom, 1.0), 0.0)
    sim = np.clip(sim, -1.0, 1.0)
    idx = np.arange(gram.shape[-1])
    sim[..., idx, idx] = 1.0
    return sim


def cosine_similarity(maps: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """``(F, V)`` maps (optionally ``(V,)`` voxel weights) -> ``(F, F)`` cosine similarity."""
    x = np.asarray(maps, dtype=float)
    gram = (x * weights) @ x.T if weights is not None else x @ x.T
    return cosine_from_gram(gram)


def empty_maps(maps: np.ndarray) -> np.ndarray:
    """``(F, V)`` -> ``(F,)`` bool: maps without any non-zero voxel."""
    return ~np.any(np.asarray(maps) != 0, axis=1)


def bootstrap_similarities(
    maps: np.ndarray, n_bootstrap: int, rng: np.random.Generator, chunk: int = _CHUNK
) -> np.ndarray:
    """Cosine similarity of ``maps`` on voxels resampled with replacement.

    Each bootstrap draws ``V`` voxels with replacement from the ``V`` columns.
    Only voxels where some map is non-zero can change an inner product, so the
    counts are drawn exactly from a multinomial over those ``k`` voxels plus one
    bucket for all the others, and the Gram matrices are ``W @ P`` with ``W``
    the ``(B, k)`` counts and ``P`` the ``(k, F(F+1)/2)`` pairwise products.

    Parameters
    ----------
    maps : ndarray
        ``(F, V)``.
    n_bootstrap : int
        ``B``.
    rng : numpy Generator
        Source of the resampling (seeded by the caller).

    Returns
    -------
    ndarray
        ``(B, F, F)`` similarity matrices.
    """
    x = np.asarray(maps, dtype=float)
    n_feat, n_vox = x.shape
    nz = np.flatnonzero(np.any(x != 0, axis=0))
    k = nz.size
    iu, ju = np.triu_indices(n_feat)
    out = np.empty((n_bootstrap, n_feat, n_feat))
    if k == 0:
        out[:] = cosine_from_gram(np.zeros((n_feat, n_feat)))
        return out
    xs = x[:, nz]
    products = (xs[iu] * xs[ju]).T  # (k, n_pairs)
    pvals = np.full(k + 1, 1.0 / n_vox)
    pvals[-1] = max(0.0, 1.0 - k / n_vox)
    pvals /= pvals.sum()
    for start in range(0, n_bootstrap, chunk):
        stop = min(n_bootstrap, start + chunk)
        counts = rng.multinomial(n_vox, pvals, size=stop - start)[:, :k].astype(float)
        pair = counts @ products  # (b, n_pairs)
        gram = np.empty((stop - start, n_feat, n_feat))
        gram[:, iu, ju] = pair
        gram[:, ju, iu] = pair
        out[start:stop] = cosine_from_gram(gram)
    return out


def upper(matrix: np.ndarray) -> np.ndarray:
    """``(F, F)`` -> ``(F(F-1)/2,)`` strict upper triangle, row-major."""
    iu, ju = np.triu_indices(matrix.shape[0], k=1)
    return np.asarray(matrix)[iu, ju]


def _standardised_ranks(matrix: np.ndarray) -> np.ndarray:
    """``(F, F)`` symmetric -> ``(F, F)`` matrix of upper-triangle ranks, centred and unit-norm.

    The diagonal is 0. Spearman of two matrices is then the dot product of
    their upper triangles; permuting a matrix's labels permutes these values.
    """
    n = matrix.shape[0]
    iu, ju = np.triu_indices(n, k=1)
    ranks = rankdata(np.asarray(matrix)[iu, ju])
    ranks = ranks - ranks.mean()
    norm = np.linalg.norm(ranks)
    ranks = ranks / norm if norm > 0 else ranks
    out = np.zeros((n, n))
    out[iu, ju] = ranks
    out[ju, iu] = ranks
    return out


def spearman_upper(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman correlation of the strict upper triangles of two ``(F, F)`` matrices."""
    return float(upper(_standardised_ranks(a)) @ upper(_standardised_ranks(b)))


def _permuted_upper(ranks: np.ndarray, perms: np.ndarray) -> np.ndarray:
    """``(F, F)`` rank matrix, ``(n, F)`` permutations -> ``(n, F(F-1)/2)`` permuted upper triangles."""
    n = ranks.shape[0]
    iu, ju = np.triu_indices(n, k=1)
    return ranks[perms[:, iu], perms[:, ju]]


def _permutations(rng: np.random.Generator, n_perm: int, n: int) -> np.ndarray:
    return np.argsort(rng.random((n_perm, n)), axis=1)


def mantel(
    a: np.ndarray, b: np.ndarray, n_permutations: int, rng: np.random.Generator
) -> tuple[float, float | None]:
    """Spearman of upper triangles and a one-sided Mantel permutation p.

    The labels (rows and columns together) of ``b`` are permuted;
    ``p = (1 + #{rho_perm >= rho}) / (1 + n_permutations)``.

    Returns
    -------
    rho : float
    p : float or None
        None when ``n_permutations`` is 0.
    """
    ra, rb = _standardised_ranks(a), _standardised_ranks(b)
    ua = upper(ra)
    rho = float(ua @ upper(rb))
    if n_permutations <= 0:
        return rho, None
    count = 0
    for start in range(0, n_permutations, 2048):
        n = min(2048, n_permutations - start)
        perm = _permutations(rng, n, a.shape[0])
        null = _permuted_upper(rb, perm) @ ua
        count += int(np.sum(null >= rho - 1e-12))
    return rho, (1 + count) / (1 + n_permutations)


def consistency(
    matrices: list[np.ndarray], n_permutations: int, rng: np.random.Generator
) -> dict:
    """Agreement of participants' ``(F, F)`` matrices: mean pairwise Spearman + permutation p.

    Null: the task labels of every matrix but the first are permuted
    independently (Mantel style) and the mean pairwise Spearman recomputed.

    Returns
    -------
    dict
        ``pairs`` (list of ``(i, j, rho)``), ``mean_spearman``, ``p`` (None without
        permutations), ``n_permutations``.
    """
    n_mat = len(matrices)
    if n_mat < 2:
        raise ValueError("consistency needs at least two matrices")
    ranks = [_standardised_ranks(m) for m in matrices]
    ups = [upper(r) for r in ranks]
    pairs = [(i, j, float(ups[i] @ ups[j])) for i, j in itertools.combinations(range(n_mat), 2)]
    observed = float(np.mean([rho for _, _, rho in pairs]))
    p = None
    if n_permutations > 0:
        count = 0
        n_feat = matrices[0].shape[0]
        for start in range(0, n_permutations, 2048):
            n = min(2048, n_permutations - start)
            perm_ups = [np.broadcast_to(ups[0], (n, ups[0].size))]
            for r in ranks[1:]:
                perm_ups.append(_permuted_upper(r, _permutations(rng, n, n_feat)))
            total = np.zeros(n)
            for i, j in itertools.combinations(range(n_mat), 2):
                total += np.einsum("ij,ij->i", perm_ups[i], perm_ups[j])
            null = total / len(pairs)
            count += int(np.sum(null >= observed - 1e-12))
        p = (1 + count) / (1 + n_permutations)
    return {"pairs": pairs, "mean_spearman": observed, "p": p, "n_permutations": int(n_permutations)}


#: Fewer tasks than this and the main-effect model leaves too few degrees of freedom.
MIN_TASKS_ADJUSTED = 6


def main_effect_residuals(matrix: np.ndarray) -> np.ndarray:
    """``(F, F)`` symmetric -> ``(F, F)`` what is left after removing per-task main effects.

    The strict upper triangle ``S_ij`` is fitted by least squares with
    ``mu + a_i + a_j`` (additive row/column effects: double-centring over the
    off-diagonal entries) plus two non-additivity terms built from the matrix's
    own additive effects, ``g1 * a_i * a_j + g2 * |a_i - a_j|`` (Tukey's
    one-degree-of-freedom term and its absolute-difference counterpart), so a
    similarity that depends on the tasks only through a per-task strength
    (e.g. how many voxels survive the threshold) leaves almost nothing. The
    residuals are returned as a symmetric matrix with a zero diagonal.

    Every step is computed from the matrix itself, so relabelling the tasks
    relabels the residuals (``residuals(S[p][:, p]) == residuals(S)[p][:, p]``),
    which keeps a Mantel permutation of the residuals exact.
    """
    s = np.asarray(matrix, dtype=float)
    n = s.shape[0]
    if n < MIN_TASKS_ADJUSTED:
        raise ValueError(f"main-effect adjustment needs at least {MIN_TASKS_ADJUSTED} tasks, got {n}")
    iu, ju = np.triu_indices(n, k=1)
    y = (s[iu, ju] + s[ju, iu]) / 2.0
    full = np.zeros((n, n))
    full[iu, ju] = y
    full[ju, iu] = y
    mu = y.mean()
    effect = (full.sum(axis=1) - (n - 1) * mu) / (n - 2)
    design = np.zeros((iu.size, n + 2))
    rows = np.arange(iu.size)
    design[rows, iu] = 1.0
    design[rows, ju] = 1.0
    design[:, n] = effect[iu] * effect[ju]
    design[:, n + 1] = np.abs(effect[iu] - effect[ju])
    beta, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ beta
    out = np.zeros((n, n))
    out[iu, ju] = resid
    out[ju, iu] = resid
    return out


def _unit_upper_matrix(matrix: np.ndarray) -> np.ndarray:
    """Symmetric ``(F, F)`` -> the same with its upper triangle centred and scaled to unit norm."""
    n = matrix.shape[0]
    iu, ju = np.triu_indices(n, k=1)
    values = matrix[iu, ju] - matrix[iu, ju].mean()
    norm = np.linalg.norm(values)
    values = values / norm if norm > 0 else values
    out = np.zeros((n, n))
    out[iu, ju] = values
    out[ju, iu] = values
    return out


def adjusted_mantel(
    a: np.ndarray, b: np.ndarray, n_permutations: int, rng: np.random.Generator
) -> tuple[float, float | None]:
    """Mantel test of two ``(F, F)`` matrices after removing each one's per-task main effects.

    The statistic is the Pearson correlation of the :func:`main_effect_residuals`
    of ``a`` and ``b``; the null permutes the task labels of ``b`` (rows and
    columns together), as :func:`mantel` does, with
    ``p = (1 + #{r_perm >= r}) / (1 + n_permutations)`` (one-sided).

    Returns
    -------
    r : float
    p : float or None
        None when ``n_permutations`` is 0.
    """
    ea = _unit_upper_matrix(main_effect_residuals(a))
    eb = _unit_upper_matrix(main_effect_residuals(b))
    ua = upper(ea)
    r = float(ua @ upper(eb))
    if n_permutations <= 0:
        return r, None
    count = 0
    for start in range(0, n_permutations, 2048):
        n = min(2048, n_permutations - start)
        perm = _permutations(rng, n, a.shape[0])
        null = _permuted_upper(eb, perm) @ ua
        count += int(np.sum(null >= r - 1e-12))
    return r, (1 + count) / (1 + n_permutations)
