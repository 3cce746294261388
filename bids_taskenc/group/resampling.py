"""Resampling for the tree's clade support that respects spatial correlation.

Neighbouring voxels of a prediction map are not independent (the BOLD signal,
the acquisition and the maps themselves are spatially smooth), so resampling
single voxels as if they were independent makes every similarity look far
more certain than it is: with six tasks, a true star tree and Gaussian noise
of sigma = 2 voxels, 60 % of the (all spurious) clades reached support >= 0.95.
Three resamplings are offered instead (``auto``, the default, picks one):

* **block** (``auto`` with one or two participants): a spatial block bootstrap. The voxel grid of each
  participant's maps is cut into non-overlapping boxes of ``bx x by x bz``
  voxels (:func:`block_labels`); a bootstrap draws boxes uniformly with
  replacement (among the boxes holding analysed voxels) until at least as many
  analysed voxels as the participant has are drawn, and the similarity is the
  cosine over the drawn voxels (a weighted cosine, see
  :func:`block_bootstrap_similarities`). Participants are resampled
  independently and their bootstrap matrices averaged, as the observed matrix is.
* **participant**: the participants are resampled with replacement and their
  (whole-brain) similarity matrices averaged (:func:`participant_bootstrap_similarities`);
  offered with three or more participants.
* **participant-t** (``auto`` from three participants on): draws of the mean matrix
  from its Student-t distribution over participants (:func:`participant_t_similarities`).

The box edge comes from the maps' spatial autocorrelation unless it is given
(:func:`block_design`): :func:`autocorrelation_profile` estimates it along each axis
at lags 1 to :data:`MAX_EDGE` voxels from the unthresholded r maps,
:func:`decay_lags` finds where it first falls to :data:`ACF_LEVEL`, the longest of
the three axes (in mm, :func:`pooled_decay`) sets every axis, and :func:`block_edges`
rounds it up to voxels. Before issue 23 the edge was 1.5 FWHM from the lag-1
autocorrelation assuming a Gaussian shape (:func:`estimate_fwhm`, still recorded):
right for Gaussian noise, blind to a long tail. :attr:`BlockDesign.problem` says when
the boxes do not cover the decay or are fewer than :data:`MIN_BLOCKS`.

**Which one, and what the support means** (issue 23 §2, ``benchmarks/tree_support.py``,
docs/tree-support.md; one participant unless said). The old block rule held for a
Gaussian autocorrelation (1 % of a star tree's spurious clades at support >= 0.95) but
not for the heavy-tailed one of fMRI noise (60 % sigma = 1.5 + 40 % sigma = 6 voxels:
27 %; every fixed box from 4 to 16 voxels 24-38 % on 24^3 voxels). Boxes that cover
the decay hold for star trees where the maps are large enough (48^3: 3.8 %), but the
split average linkage forces inside a true cluster of three still reached >= 0.95 in
13.5 % of simulations even with Gaussian noise: at one participant no resampling here
is calibrated, and the block bootstrap's support is *descriptive* (how stable a clade
is to resampling boxes of voxels). Participants are independent units whatever their
spatial autocorrelation, but drawing few of them with replacement gives a clade they
all show by chance support 1 (23-27 % of the splits inside planted clusters at 3
participants): descriptive too. The **participant-t** resampling
(:func:`participant_t_similarities`) draws the mean matrix from its one-sample
Student-t distribution over participants instead: 0 % of star-tree spurious clades at
>= 0.95 for both noises, at most 4 % of the splits inside planted clusters; it is the
one *calibrated* support, and ``auto`` (the default, :func:`resolve_tree_bootstrap`)
takes it from :data:`MIN_PARTICIPANTS_BOOTSTRAP` participants on, the block bootstrap
below.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from bids_taskenc.group.options import TREE_BOOTSTRAPS as TREE_BOOTSTRAPS  # resamplings; ``auto`` picks one
from bids_taskenc.group.similarity import cosine_from_gram

#: The box edge is the lag where the maps' spatial autocorrelation falls to this level
#: (:func:`decay_lags`), rounded up. For Gaussian noise of sigma = 2 voxels (autocorrelation
#: ``exp(-d^2 / 16)``) that is 7 voxels, as the older rule of 1.5 FWHM gave; for the heavy tail of
#: 60 % sigma = 1.5 + 40 % sigma = 6 voxels it is 15 voxels where the FWHM rule gave 7
#: (``benchmarks/tree_support.py``, docs/tree-support.md).
ACF_LEVEL = 0.1

#: Largest box edge (voxels), and the largest lag the autocorrelation is estimated at.
MAX_EDGE = 16

#: Fewer boxes than this with analysed voxels and the boxes do not cover the autocorrelation
#: (:attr:`BlockDesign.problem`; at 24^3 voxels, 8 boxes of 14 voxels, wide enough for the heavy
#: tail, still left 24 % of a star tree's spurious clades at support >= 0.95).
MIN_BLOCKS = 30

_CHUNK = 64

#: The participant bootstrap needs at least this many participants (and ``auto`` takes it from here on).
MIN_PARTICIPANTS_BOOTSTRAP = 3

#: What the support of each resampling means (``SupportInterpretation`` and ``...Reason`` in the sidecars).
#: The numbers: ``benchmarks/tree_support.py``, seed 0, 100 simulations of 200 resamples, 24^3 voxels
#: unless said (docs/tree-support.md).
SUPPORT_INTERPRETATIONS = {
    "participant-t": (
        "calibrated",
        "participants are independent whatever the spatial autocorrelation of their maps, and the t draws widen "
        "with their disagreement and their number; on simulated star trees (6 tasks, 3 or 5 participants) no "
        "spurious clade reached support >= 0.95 with a Gaussian or a heavy-tailed spatial autocorrelation, and "
        "at most 4.0 % of the spurious splits inside planted clusters did; it is conservative with 3 "
        "participants (with heavy-tailed noise 53 % of planted clades reached >= 0.95, 95 % with 5)",
    ),
    "participant": (
        "descriptive",
        "with few participants, a clade that every participant shows by chance gets support 1 when participants "
        "are drawn with replacement (1 in 9 for a three-way split at 3 participants): 23-27 % of the spurious "
        "splits inside simulated planted clusters reached support >= 0.95 at 3 participants, 9-16 % at 5; "
        "--tree-bootstrap participant-t is calibrated",
    ),
    "block": (
        "descriptive",
        "the boxes cover the maps' spatial autocorrelation (at least as wide as its decay to ACF_LEVEL, at least "
        "MIN_BLOCKS of them), which keeps a simulated star tree's spurious clades at support >= 0.95 under 5 % "
        "(at most 4.1 % with Gaussian noise, 3.8 % with the heavy tail on 48^3 voxels), but the split that "
        "average linkage forces inside a true cluster "
        "of three still reached support >= 0.95 in 13.5 % of simulations (Gaussian noise, one participant): "
        "the support says how stable a clade is to resampling boxes of voxels, not how likely it is to be real; "
        "with 3 or more participants --tree-bootstrap participant-t (the default) is calibrated",
    ),
}


def autocorrelation_profile(volumes: np.ndarray, mask: np.ndarray, max_lag: int = MAX_EDGE) -> np.ndarray:
    """Spatial autocorrelation along each axis at lags ``0 .. max_lag`` voxels, pooled over maps.

    Parameters
    ----------
    volumes : ndarray
        ``(F, X, Y, Z)`` maps (values outside ``mask`` are ignored).
    mask : ndarray
        ``(X, Y, Z)`` bool voxels to use.
    max_lag : int
        Largest lag in voxels.

    Returns
    -------
    ndarray
        ``(3, max_lag + 1)``: per axis and lag ``d``, ``sum x_v x_{v+d} / sqrt(sum x_v^2 sum x_{v+d}^2)``
        over the pairs of voxels ``d`` apart both inside the mask, each map demeaned over the mask
        first; 1 at lag 0; NaN where there is no such pair or the maps have no variance.
    """
    vols = np.asarray(volumes, dtype=float)
    mask = np.asarray(mask, dtype=bool)
    centred = np.zeros_like(vols)
    for f in range(vols.shape[0]):
        values = vols[f][mask]
        centred[f][mask] = values - values.mean()
    out = np.full((3, max_lag + 1), np.nan)
    out[:, 0] = 1.0
    for axis in range(3):
        for lag in range(1, min(max_lag, mask.shape[axis] - 1) + 1):
            lo = [slice(None)] * 3
            hi = [slice(None)] * 3
            lo[axis], hi[axis] = slice(0, -lag), slice(lag, None)
            both = mask[tuple(lo)] & mask[tuple(hi)]
            if not both.any():
                continue
            a = centred[(slice(None), *lo)][:, both]
            b = centred[(slice(None), *hi)][:, both]
            denom = math.sqrt(float(np.sum(a * a)) * float(np.sum(b * b)))
            if denom > 0:
                out[axis, lag] = float(np.sum(a * b)) / denom
    return out


def lag1_autocorrelation(volumes: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``(3,)`` lag-1 spatial autocorrelation along each axis (:func:`autocorrelation_profile` at lag 1)."""
    return autocorrelation_profile(volumes, mask, max_lag=1)[:, 1]


def decay_lags(profile: np.ndarray, level: float = ACF_LEVEL) -> np.ndarray:
    """``(3,)`` lag (voxels) where each axis's autocorrelation first falls to ``level``.

    Linear between the lags of ``profile`` (:func:`autocorrelation_profile`); inf where it stays
    above ``level`` up to the last lag; NaN for an axis without any estimate beyond lag 0.
    """
    prof = np.asarray(profile, dtype=float)
    out = np.full(prof.shape[0], np.nan)
    for axis, rho in enumerate(prof):
        if not np.isfinite(rho[1:]).any():
            continue
        out[axis] = np.inf
        for lag in range(1, rho.size):
            if np.isfinite(rho[lag]) and rho[lag] <= level:
                prev = rho[lag - 1]
                out[axis] = lag - 1 + (prev - level) / (prev - rho[lag]) if np.isfinite(prev) else float(lag)
                break
    return out


def fwhm_from_autocorrelation(rho: np.ndarray) -> np.ndarray:
    """Lag-1 autocorrelation -> FWHM in voxels, assuming a Gaussian autocorrelation.

    ``rho <= 0`` (no positive correlation) gives 0; ``rho >= 1`` gives inf; NaN stays NaN.
    """
    rho = np.asarray(rho, dtype=float)
    out = np.full(rho.shape, np.nan)
    out[rho <= 0] = 0.0
    out[rho >= 1] = np.inf
    mid = (rho > 0) & (rho < 1)
    out[mid] = np.sqrt(-2.0 * np.log(2.0) / np.log(rho[mid]))
    return out


def estimate_fwhm(volumes: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``(F, X, Y, Z)`` maps in a mask -> ``(3,)`` FWHM (voxels) along each axis."""
    return fwhm_from_autocorrelation(lag1_autocorrelation(volumes, mask))


def _three_edges(edges: list[int]) -> tuple[int, int, int]:
    """Box edges of a 3-D grid, one per axis."""
    if len(edges) != 3:
        raise ValueError(f"a box has 3 edges (one per axis of the volume), got {len(edges)}: {edges}")
    return edges[0], edges[1], edges[2]


def block_edges(
    decay_voxels: ArrayLike | None = None,
    *,
    voxel_sizes: Sequence[float] | None = None,
    block_mm: float | None = None,
) -> tuple[int, int, int]:
    """Box edge in voxels along each axis.

    ``block_mm`` given: ``max(1, round(block_mm / voxel_size))`` per axis. Otherwise the
    autocorrelation's decay lag (:func:`decay_lags`) rounded up, clipped to ``[1, MAX_EDGE]``
    (inf, no decay within the lags estimated, gives ``MAX_EDGE``; an axis without an estimate
    takes the largest of the others, or 1).
    """
    if block_mm is not None:
        if voxel_sizes is None:
            raise ValueError("block_mm needs voxel_sizes")
        return _three_edges([max(1, math.floor(float(block_mm) / float(v) + 0.5)) for v in voxel_sizes])
    if decay_voxels is None:
        raise ValueError("block_edges needs decay_voxels, or block_mm and voxel_sizes")
    decay = np.asarray(decay_voxels, dtype=float)
    known = decay[~np.isnan(decay)]
    decay = np.where(np.isnan(decay), float(known.max()) if known.size else 1.0, decay)
    edges = np.ceil(np.minimum(decay, MAX_EDGE) - 1e-9)
    return _three_edges([int(e) for e in np.clip(edges, 1, MAX_EDGE)])


def pooled_decay(decay_voxels: ArrayLike, voxel_sizes: Sequence[float]) -> np.ndarray:
    """``(3,)`` voxels: the longest decay of the axes (in mm) on every axis, as the autocorrelation of noise is.

    Each axis's estimate is noisy and, on a small grid, short (demeaning takes the longest
    correlations out); the longest of the three is the least optimistic. NaN axes are ignored
    (all NaN gives NaN).
    """
    sizes = np.asarray(voxel_sizes, dtype=float)
    mm = np.asarray(decay_voxels, dtype=float) * sizes
    if np.isnan(mm).all():
        return np.full(sizes.shape, np.nan)
    return np.nanmax(mm) / sizes


@dataclass(frozen=True)
class BlockDesign:
    """The boxes of one participant's block bootstrap and whether they cover its maps' autocorrelation.

    ``edges`` ``(3,)`` voxels; ``labels`` ``(V,)`` box of each analysed voxel; ``decay`` ``(3,)`` lag
    (voxels) where the autocorrelation falls to :data:`ACF_LEVEL` (inf: not within :data:`MAX_EDGE`);
    ``fwhm`` ``(3,)`` voxels from the lag-1 autocorrelation (for the record); ``problem``: why the
    boxes do not cover the autocorrelation (None: at least as wide as the decay, at least :data:`MIN_BLOCKS`).
    """

    edges: tuple[int, int, int]
    labels: np.ndarray
    decay: np.ndarray
    fwhm: np.ndarray
    problem: str | None

    @property
    def n_blocks(self) -> int:
        return int(self.labels.max()) + 1 if self.labels.size else 0


def block_design(
    volumes: np.ndarray, mask: np.ndarray, voxel_sizes: Sequence[float], block_mm: float | None = None
) -> BlockDesign:
    """Boxes for the ``(F, X, Y, Z)`` unthresholded maps in ``mask`` (edges from their autocorrelation or ``block_mm``).

    ``voxel_sizes`` (mm) pool the axes' decay (:func:`pooled_decay`) and convert ``block_mm``.
    """
    profile = autocorrelation_profile(volumes, mask)
    decay = pooled_decay(decay_lags(profile), voxel_sizes)
    edges = block_edges(decay, voxel_sizes=voxel_sizes, block_mm=block_mm)
    labels = block_labels(mask, edges)
    n_blocks = int(labels.max()) + 1 if labels.size else 0
    problem = None
    if not np.all(np.isfinite(decay[~np.isnan(decay)])):
        problem = f"the maps' spatial autocorrelation stays above {ACF_LEVEL:g} beyond {MAX_EDGE} voxels"
    elif np.any(np.asarray(edges) < decay - 1e-9):
        problem = (
            f"boxes of {'x'.join(map(str, edges))} voxels are narrower than the autocorrelation's decay to "
            f"{ACF_LEVEL:g} ({'x'.join(f'{d:.1f}' for d in decay)} voxels)"
        )
    elif n_blocks < MIN_BLOCKS:
        problem = f"only {n_blocks} boxes of {'x'.join(map(str, edges))} voxels (fewer than {MIN_BLOCKS})"
    return BlockDesign(edges, labels, decay, fwhm_from_autocorrelation(profile[:, 1]), problem)


def block_labels(mask: np.ndarray, edges: Sequence[int]) -> np.ndarray:
    """Box of each analysed voxel.

    Parameters
    ----------
    mask : ndarray
        ``(X, Y, Z)`` bool; the analysed voxels in C order are the columns of the maps.
    edges : (int, int, int)
        Box edge in voxels along each axis (boxes start at voxel 0 of the grid).

    Returns
    -------
    ndarray
        ``(V,)`` int: box index (0 .. n_boxes-1, only boxes holding analysed voxels
        are numbered) of each analysed voxel.
    """
    mask = np.asarray(mask, dtype=bool)
    ijk = np.nonzero(mask)
    edges = [max(1, int(e)) for e in edges]
    counts = [-(-n // e) for n, e in zip(mask.shape, edges)]
    box = np.ravel_multi_index(tuple(c // e for c, e in zip(ijk, edges)), counts)
    _, labels = np.unique(box, return_inverse=True)
    return labels.astype(np.int64)


def _draw_block_counts(sizes: np.ndarray, n_target: int, n_draws: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_draws, n_blocks)`` how often each box was drawn, boxes drawn until ``>= n_target`` voxels."""
    n_blocks = sizes.size
    guess = math.ceil(1.25 * n_target / sizes.mean()) + 8
    out = np.empty((n_draws, n_blocks), dtype=float)
    for row in range(n_draws):
        draws = rng.integers(0, n_blocks, guess)
        total = np.cumsum(sizes[draws])
        while total[-1] < n_target:  # rare: extend the draw
            more = rng.integers(0, n_blocks, guess)
            draws = np.concatenate([draws, more])
            total = np.cumsum(sizes[draws])
        stop = int(np.searchsorted(total, n_target)) + 1
        out[row] = np.bincount(draws[:stop], minlength=n_blocks)
    return out


def block_bootstrap_similarities(
    maps: np.ndarray,
    labels: np.ndarray,
    n_bootstrap: int,
    rng: np.random.Generator,
    chunk: int = _CHUNK,
) -> np.ndarray:
    """Cosine similarity of ``maps`` on spatial boxes resampled with replacement.

    Each bootstrap draws boxes uniformly with replacement until the drawn boxes
    hold at least ``V`` analysed voxels; a voxel drawn ``c`` times weighs ``c``
    in the cosine. The Gram matrices are ``C @ P`` with ``C`` the ``(B, n_boxes)``
    draw counts and ``P`` the per-box sums of the maps' pairwise products, so no
    voxel data is copied.

    Parameters
    ----------
    maps : ndarray
        ``(F, V)`` maps over the analysed voxels.
    labels : ndarray
        ``(V,)`` box of each voxel (:func:`block_labels`).
    n_bootstrap : int
    rng : numpy Generator

    Returns
    -------
    ndarray
        ``(B, F, F)`` similarity matrices.
    """
    x = np.asarray(maps, dtype=float)
    labels = np.asarray(labels, dtype=np.int64)
    n_feat, n_vox = x.shape
    if labels.shape != (n_vox,):
        raise ValueError(f"labels has shape {labels.shape}, maps have {n_vox} voxels")
    n_blocks = int(labels.max()) + 1
    sizes = np.bincount(labels, minlength=n_blocks)
    iu, ju = np.triu_indices(n_feat)
    out = np.empty((n_bootstrap, n_feat, n_feat))
    nz = np.flatnonzero(np.any(x != 0, axis=0))
    per_block = np.zeros((n_blocks, iu.size))
    if nz.size:
        products = (x[iu][:, nz] * x[ju][:, nz]).T  # (k, n_pairs)
        order = np.argsort(labels[nz], kind="stable")
        sorted_labels = labels[nz][order]
        starts = np.flatnonzero(np.r_[True, np.diff(sorted_labels) > 0])
        per_block[sorted_labels[starts]] = np.add.reduceat(products[order], starts, axis=0)
    used = np.flatnonzero(np.any(per_block != 0, axis=1))
    for start in range(0, n_bootstrap, chunk):
        stop = min(n_bootstrap, start + chunk)
        counts = _draw_block_counts(sizes, n_vox, stop - start, rng)
        pair = counts[:, used] @ per_block[used]
        gram = np.empty((stop - start, n_feat, n_feat))
        gram[:, iu, ju] = pair
        gram[:, ju, iu] = pair
        out[start:stop] = cosine_from_gram(gram)
    return out


def participant_bootstrap_similarities(
    matrices: Sequence[np.ndarray], n_bootstrap: int, rng: np.random.Generator
) -> np.ndarray:
    """Mean of ``P`` participants' ``(F, F)`` matrices drawn with replacement, ``(B, F, F)``."""
    stack = np.asarray(matrices, dtype=float)
    n_part = stack.shape[0]
    draws = rng.integers(0, n_part, size=(n_bootstrap, n_part))
    return stack[draws].mean(axis=1)


def participant_t_similarities(
    matrices: Sequence[np.ndarray], n_bootstrap: int, rng: np.random.Generator
) -> np.ndarray:
    """``(B, F, F)`` draws of the mean ``(F, F)`` similarity from its Student-t distribution over participants.

    ``M* = M_mean + s * sum_p z_p (M_p - M_mean) / sqrt(P (P - 1))`` with ``z_p`` standard normal and
    ``s = sqrt(nu / chi2_nu)``, ``nu = P - 1``, one ``s`` per draw. Each entry (and each difference of
    entries, so each comparison the linkage makes) is then ``mean + (SD / sqrt(P)) T_nu``: the
    one-sample t of the participants' values. Resampling participants with replacement instead gives
    a clade found in all of few participants support 1, which happens by chance (1 in 9 for a three-way
    split at 3 participants); the t draws widen with the participants' disagreement and their number.

    Parameters
    ----------
    matrices : sequence of ndarray
        ``P >= 2`` participants' ``(F, F)`` similarity matrices.
    n_bootstrap : int
    rng : numpy Generator
    """
    stack = np.asarray(matrices, dtype=float)
    n_part = stack.shape[0]
    if n_part < 2:
        raise ValueError(f"the participant t resampling needs at least 2 participants, got {n_part}")
    mean = stack.mean(axis=0)
    deviations = (stack - mean).reshape(n_part, -1)
    z = rng.normal(size=(n_bootstrap, n_part))
    scale = np.sqrt((n_part - 1) / rng.chisquare(n_part - 1, size=n_bootstrap))
    draws = (scale[:, None] * z) @ deviations / math.sqrt(n_part * (n_part - 1))
    return mean + draws.reshape(n_bootstrap, *mean.shape)


def resolve_tree_bootstrap(option: str, n_participants: int) -> str:
    """The resampling ``option`` names: ``auto`` is ``participant-t`` from :data:`MIN_PARTICIPANTS_BOOTSTRAP` on.

    Below that, ``auto`` is ``block``; any other option names itself.
    """
    if option not in TREE_BOOTSTRAPS:
        raise ValueError(f"tree_bootstrap must be one of {TREE_BOOTSTRAPS}, got {option!r}")
    if option != "auto":
        return option
    return "participant-t" if n_participants >= MIN_PARTICIPANTS_BOOTSTRAP else "block"


#: Why a block bootstrap whose boxes cannot cover the autocorrelation is descriptive (after the problem).
BLOCK_DESCRIPTIVE = (
    "boxes that do not cover a heavy-tailed spatial autocorrelation (as fMRI noise has) gave 12-38 % of a "
    "simulated star tree's spurious clades support >= 0.95, so the support says how stable a clade is to "
    "resampling boxes of voxels, not how likely it is to be real; with 3 or more participants "
    "--tree-bootstrap participant-t (the default) is calibrated"
)


def support_interpretation(method: str, problem: str | None = None) -> dict[str, str]:
    """What the support of ``method`` means: ``SupportInterpretation`` and ``SupportInterpretationReason``.

    ``{"SupportInterpretation": "calibrated" | "descriptive", "SupportInterpretationReason": text}``;
    ``problem`` (block only): why its boxes do not cover the maps' autocorrelation (:attr:`BlockDesign.problem`);
    the block bootstrap is descriptive either way, for that reason or (its boxes fine) for splits inside clusters.
    """
    if problem is not None:
        return {
            "SupportInterpretation": "descriptive",
            "SupportInterpretationReason": f"{problem}; {BLOCK_DESCRIPTIVE}",
        }
    kind, reason = SUPPORT_INTERPRETATIONS[method]
    reason = reason.replace("ACF_LEVEL", f"{ACF_LEVEL:g}").replace("MIN_BLOCKS", str(MIN_BLOCKS))
    return {"SupportInterpretation": kind, "SupportInterpretationReason": reason}
