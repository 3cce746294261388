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


def mantel(a: np.ndarray, b: np.ndarray, n_permutations: int, rng: np.random.Generator) -> tuple[float, float | None]:
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


def consistency(matrices: list[np.ndarray], n_permutations: int, rng: np.random.Generator) -> dict:
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


def chance_similarity(maps: np.ndarray) -> np.ndarray:
    """``(F, V)`` maps -> ``(F, F)`` similarity the maps would have by chance alone.

    ``rho_i rho_j`` with ``rho_i = mean|x_i| / rms(x_i)`` (the cosine of ``|x_i|`` with a
    constant map): the expected cosine of two non-negative maps whose voxels were
    placed independently at random. For thresholded maps it is set by how many
    voxels survive (``rho_i^2`` is the surviving fraction when the surviving values
    are equal) and by their spread; it carries no pairwise structure. Diagonal 1;
    an empty map gives 0.
    """
    x = np.abs(np.asarray(maps, dtype=float))
    rms = np.sqrt(np.mean(x * x, axis=1))
    rho = np.where(rms > 0, x.mean(axis=1) / np.where(rms > 0, rms, 1.0), 0.0)
    out = np.outer(rho, rho)
    np.fill_diagonal(out, 1.0)
    return out


def main_effect_basis(chance: np.ndarray) -> np.ndarray:
    """Orthonormal basis ``(F(F-1)/2, k)`` of what a per-task main effect explains in a matrix.

    Columns spanned: the additive row/column effects ``mu + a_i + a_j`` (removing
    them is double-centring over the off-diagonal entries) and the upper triangle
    of ``chance`` (:func:`chance_similarity`), the multiplicative overlap that
    thresholded maps share by their surviving-voxel counts alone.
    """
    chance = np.asarray(chance, dtype=float)
    n = chance.shape[0]
    if n < MIN_TASKS_ADJUSTED:
        raise ValueError(f"main-effect adjustment needs at least {MIN_TASKS_ADJUSTED} tasks, got {n}")
    iu, ju = np.triu_indices(n, k=1)
    design = np.zeros((iu.size, n + 1))
    rows = np.arange(iu.size)
    design[rows, iu] = 1.0
    design[rows, ju] = 1.0
    design[:, n] = chance[iu, ju]
    u, sv, _ = np.linalg.svd(design, full_matrices=False)
    return u[:, sv > 1e-10 * sv[0]]


def main_effect_residuals(matrix: np.ndarray, chance: np.ndarray) -> np.ndarray:
    """``(F, F)`` -> ``(F(F-1)/2,)`` upper triangle with the :func:`main_effect_basis` projected out."""
    basis = main_effect_basis(chance)
    y = upper(np.asarray(matrix, dtype=float))
    return y - basis @ (basis.T @ y)


def partial_mantel(
    a: np.ndarray, b: np.ndarray, chance: np.ndarray, n_permutations: int, rng: np.random.Generator
) -> tuple[float, float | None]:
    """Partial Mantel test of ``a`` and ``b`` controlling for per-task main effects.

    Both upper triangles are residualised on :func:`main_effect_basis` (additive
    per-task effects and the chance similarity of ``a``'s maps) and correlated
    (Pearson). The null permutes the task labels of ``b`` (rows and columns
    together), as :func:`mantel` does, and residualises each permuted ``b`` again
    (Smouse, Long & Sokal 1986); ``p = (1 + #{r_perm >= r}) / (1 + n_permutations)``,
    one-sided.

    Returns
    -------
    r : float
    p : float or None
        None when ``n_permutations`` is 0.
    """
    basis = main_effect_basis(chance)
    n = a.shape[0]
    ea = main_effect_residuals(a, chance)
    norm_a = np.linalg.norm(ea)
    ea = ea / norm_a if norm_a > 0 else ea

    def stat(ub: np.ndarray) -> np.ndarray:
        eb = ub - (ub @ basis) @ basis.T
        norm = np.linalg.norm(eb, axis=-1)
        return np.where(norm > 0, (eb @ ea) / np.where(norm > 0, norm, 1.0), 0.0)

    rb = np.asarray(b, dtype=float)
    r = float(stat(upper(rb)))
    if n_permutations <= 0:
        return r, None
    count = 0
    for start in range(0, n_permutations, 2048):
        k = min(2048, n_permutations - start)
        null = stat(_permuted_upper(rb, _permutations(rng, k, n)))
        count += int(np.sum(null >= r - 1e-12))
    return r, (1 + count) / (1 + n_permutations)
