"""Per-voxel contrasts of prediction accuracy between feature spaces (the paper's Fig. 3).

A contrast compares the test-set Pearson r of feature space A with that of B
(for example keypoints3d − keypoints2d), or the mean r of a group of spaces
with that of another group (3D − 2D). Both correlations are computed on the
same test responses, so they are dependent, and their p-value must use the
correlation between the predictions (the pairing):

* a pair of spaces (one on each side): **Williams' t** for two dependent
  correlations sharing one variable (Williams 1959; Steiger 1980, eq. 7),
  from r(y, A), r(y, B) and r(A, B) on the test images, df = n_test − 3;
* a group contrast (mean r of several spaces minus mean r of others): the
  weighted difference ``D = Σ_j w_j r(y, P_j)`` over its normal-theory
  standard error, ``Var(D) = Σ_jk w_j w_k ψ_jk / n`` with the Pearson–Filon
  covariance of two correlations sharing ``y`` (Steiger 1980; Olkin &
  Finn 1990), ``ψ_jk = r_jk (1 − r_j² − r_k²) − r_j r_k (1 − r_j² − r_k² −
  r_jk²) / 2`` (``r_j = r(y, P_j)``, ``r_jk = r(P_j, P_k)``), evaluated at the
  correlations pooled under the null (``r_j − w_j D / Σ w²``, which for a pair
  is Steiger's r̄), as a t on n − 3 degrees of freedom. This tests the mapped
  statistic itself (the mean-r difference), not the correlation of a composite
  prediction. (A delta-method standard error from fourth moments was tried
  first: at 40 test images 8.7% of null voxels had p < 0.05.)

Both p-values are two-sided (A − B ≠ 0), continuous, and are what the
``stat-p`` / ``stat-q`` maps hold. A bootstrap over test images (the same
resamples for every space) gives a percentile confidence interval of the
difference; its p (``p_method="bootstrap"``) is still available but has a
floor of ``2 / (n_bootstrap + 1)``, too coarse for FDR over tens of thousands
of voxels.

A resample is a vector of counts over the test images; weighted sums make the
resampled correlations a few matrix products, with no copy of the data.
Predictions arrive one feature space at a time (:class:`ContrastAccumulator`),
so a run holds one space's predictions at a time besides the standardised
test predictions (float32) of the spaces whose contrasts are still
incomplete, and the bootstrap sums.

Near-collinear predictions. Williams' t divides by ``|R|``, the determinant of
the correlation matrix of (y, A, B), which tends to 0 as r(A, B) → 1; the three
correlations must then be consistent to far below ``1 − r(A, B)``. r(A, B) was
once computed from float16 predictions (rounding ~5e-4) while r(y, A) and
r(y, B) were float64: at r(A, B) = 0.99999, |t| reached 3.6e11 and 1.6 % of
null voxels had p < .001. The stored predictions are float32 now and every
correlation is taken in float64 (null P(p < .001) 0.09 % at r(A, B) = 0.99999,
``benchmarks/stats_sims.py collinear``). Voxels where two predictions of a
contrast correlate at least :data:`NEAR_COLLINEAR_R` are counted
(``ContrastResult.n_near_collinear``, the sidecars' ``NNearCollinear``): there
the two spaces predict the same thing, and a difference, however significant,
is a difference of almost identical predictions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..core.fdr import DEFAULT_FDR_LEVEL, fdr_bh
from .stats import dependent_r_contrast_t as dependent_r_contrast_t  # its home is stats; re-exported
from .stats import williams_t

#: r(A, B) from which a voxel's two predictions count as near-collinear (docs/statistics.md).
NEAR_COLLINEAR_R = 0.9999

#: p-value methods of a contrast -> the sentence sidecars and the methods text use.
P_METHODS = {
    "williams": "Williams' t for two dependent correlations sharing the test responses (Williams 1959; Steiger "
    "1980, eq. 7), from r(y, A), r(y, B) and r(A, B) over the test images, df = n_test - 3, two-sided",
    "olkinfinn": "t-test of the weighted difference of dependent correlations sharing the test responses: normal-"
    "theory (Pearson-Filon) covariances of the correlations from r(y, P_j) and r(P_j, P_k) over the "
    "test images (Steiger 1980; Olkin & Finn 1990), evaluated at the correlations pooled under "
    "the null, df = n_test - 3, two-sided",
    "bootstrap": "two-sided percentile bootstrap over the test images (the same resamples for every space and "
    "voxel); p = 2 (1 + #resamples beyond 0) / (1 + n_bootstrap), floor 2 / (1 + n_bootstrap)",
}


@dataclass(frozen=True)
class Contrast:
    """Mean r of the spaces ``a`` minus mean r of the spaces ``b``.

    Attributes
    ----------
    name : str
        Label for file names (e.g. ``keypoints3dVSkeypoints2d``).
    a, b : tuple of str
        Feature-space names on each side (disjoint, non-empty).
    """

    name: str
    a: tuple[str, ...]
    b: tuple[str, ...]

    def __post_init__(self):
        if not self.a or not self.b:
            raise ValueError(f"contrast {self.name}: needs at least one feature space on each side")
        if set(self.a) & set(self.b):
            raise ValueError(f"contrast {self.name}: {sorted(set(self.a) & set(self.b))} on both sides")

    @property
    def is_pair(self) -> bool:
        """One space on each side (Williams' t applies)."""
        return len(self.a) == 1 and len(self.b) == 1

    def weight(self, space: str) -> float:
        """+1/|a| for a space of ``a``, −1/|b| for one of ``b``, 0 otherwise."""
        if space in self.a:
            return 1.0 / len(self.a)
        if space in self.b:
            return -1.0 / len(self.b)
        return 0.0


@dataclass
class ContrastResult:
    """Per-voxel result of one contrast.

    Attributes
    ----------
    difference : ndarray, shape (n_voxels,)
        Mean r of A minus mean r of B on the test images.
    p : ndarray, shape (n_voxels,)
        Two-sided p of difference ≠ 0 by ``method``.
    q : ndarray, shape (n_voxels,)
        Benjamini-Hochberg q of ``p`` over the voxels.
    statistic : ndarray or None, shape (n_voxels,)
        Williams' t or the group t (None for the bootstrap p).
    method : str
        Key of :data:`P_METHODS`.
    n_bootstrap : int
        Resamples behind ``ci_low``/``ci_high`` (0: no interval).
    ci_low, ci_high : ndarray or None, shape (n_voxels,)
        Percentile bootstrap interval of ``difference`` at ``ci_level``.
    ci_level : float
    df : int or None
        Degrees of freedom of the t (n_test − 3; None for the bootstrap p).
    n_near_collinear : int or None
        Voxels where two predictions of the contrast correlate at least
        :data:`NEAR_COLLINEAR_R` over the test images (None for the bootstrap p,
        which does not compute r between predictions).
    """

    difference: np.ndarray
    p: np.ndarray
    q: np.ndarray
    statistic: np.ndarray | None
    method: str
    n_bootstrap: int
    ci_low: np.ndarray | None = None
    ci_high: np.ndarray | None = None
    ci_level: float = 0.95
    df: int | None = None
    n_near_collinear: int | None = None


def _standardize(x: np.ndarray) -> np.ndarray:
    """Columns centred and scaled to mean square 1 (1/n convention), in float64; constant columns are 0."""
    x = np.asarray(x, dtype=np.float64)
    xc = x - x.mean(0)
    sd = np.sqrt((xc * xc).mean(0))
    varying = x.max(0) != x.min(0)
    return np.where(varying, xc / np.where(varying & (sd > 0), sd, 1.0), 0.0)


def _weighted_r(counts: torch.Tensor, y: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """Pearson r of every voxel under every resample.

    counts: (B, n) resample weights; y, pred: (n, v). Returns (B, v); 0 where
    either side is constant in the resample.
    """
    w = counts / counts.sum(1, keepdim=True)
    my, mp = w @ y, w @ pred
    cov = w @ (y * pred) - my * mp
    vy = (w @ (y * y) - my * my).clamp_min(0)
    vp = (w @ (pred * pred) - mp * mp).clamp_min(0)
    denom = torch.sqrt(vy * vp)
    return torch.where(denom > 0, cov / denom.clamp_min(1e-30), torch.zeros_like(cov))


def bootstrap_counts(n_test: int, n_bootstrap: int, seed: int) -> np.ndarray:
    """Resamples of ``n_test`` images with replacement as counts, shape (n_bootstrap, n_test)."""
    if n_bootstrap < 1:
        raise ValueError("n_bootstrap must be >= 1")
    gen = np.random.default_rng(seed)
    return np.stack(
        [np.bincount(gen.integers(0, n_test, n_test), minlength=n_test) for _ in range(n_bootstrap)]
    ).astype(np.float64)


class ContrastAccumulator:
    """Contrasts built one feature space at a time.

    Parameters
    ----------
    y_test : ndarray, shape (n_test, n_voxels)
        Measured test responses.
    contrasts : sequence of Contrast
    n_bootstrap : int
        Resamples of the test images (with replacement) for the confidence
        interval (and the bootstrap p); the same for every space and
        contrast. 0: no bootstrap.
    p_method : {'analytic', 'bootstrap'}
        ``analytic``: Williams' t for pairs, the group t
        (:func:`~bids_taskenc.encoding.stats.dependent_r_contrast_t`) for group contrasts;
        ``bootstrap``: the percentile-bootstrap p (needs ``n_bootstrap >= 1``).
    seed : int
    device : str
        Torch device for the bootstrap products.
    voxel_batch : int
        Voxels per product; bounds the temporary (n_bootstrap, batch) arrays.
    ci_level : float
        Coverage of the percentile interval.

    Notes
    -----
    Memory: ``y_test`` as given (no float64 copy: each block of voxels is
    made float64 when it is used; pass float32 rows). Analytic p: the
    standardised test predictions (float32, n_test × n_voxels) of every
    space whose contrasts still miss a space, for the correlations between
    predictions; they are freed as contrasts complete (15 Taskonomy 2D/3D
    spaces at BOLD5000's size, 737 × 46,536: at most 2 GB; float16 halved
    that but made near-collinear pairs' p wrong, see the module docstring). Bootstrap: one
    float32 (n_bootstrap, n_voxels) sum per contrast (4 kB a voxel at 1,000
    resamples), and float64 temporaries of ``voxel_batch`` voxels.
    """

    def __init__(
        self,
        y_test: np.ndarray,
        contrasts: Sequence[Contrast],
        *,
        n_bootstrap: int = 1000,
        p_method: str = "analytic",
        seed: int = 0,
        device: str = "cpu",
        voxel_batch: int = 4096,
        ci_level: float = 0.95,
    ):
        # kept as given (the caller's float32 rows: no float64 copy of n_test x n_voxels); each block of voxels
        # is made float64 when it is used, the same numbers as converting the whole array first
        self.y = np.asarray(y_test)
        if not (np.issubdtype(self.y.dtype, np.floating) or np.issubdtype(self.y.dtype, np.integer)):
            raise ValueError(f"y_test must be a real numeric array, got dtype {self.y.dtype}")
        if self.y.ndim != 2:
            raise ValueError(f"y_test must be (n_test, n_voxels), got shape {self.y.shape}")
        if p_method not in ("analytic", "bootstrap"):
            raise ValueError(f"p_method must be 'analytic' or 'bootstrap', got {p_method!r}")
        if n_bootstrap < 0 or (p_method == "bootstrap" and n_bootstrap < 1):
            raise ValueError("n_bootstrap must be >= 0 (>= 1 for the bootstrap p)")
        if not 0 < ci_level < 1:
            raise ValueError("ci_level must be in (0, 1)")
        n, v = self.y.shape
        if p_method == "analytic" and n < 4:
            raise ValueError(f"the analytic contrast p needs at least 4 test images, got {n}")
        self.contrasts = list(contrasts)
        self.n_bootstrap = int(n_bootstrap)
        self.p_method = p_method
        self.device = device
        self.voxel_batch = int(voxel_batch)
        self.ci_level = float(ci_level)
        self._counts = (
            torch.as_tensor(bootstrap_counts(n, self.n_bootstrap, seed), device=device) if self.n_bootstrap else None
        )
        self._observed = {c.name: np.zeros(v) for c in self.contrasts}
        self._boot = (
            {c.name: np.zeros((self.n_bootstrap, v), np.float32) for c in self.contrasts} if self.n_bootstrap else {}
        )
        self._seen: dict[str, set[str]] = {c.name: set() for c in self.contrasts}
        # analytic state: r(y, space), r(space, space') within a contrast, and the z of spaces still needed
        self._r_y: dict[str, np.ndarray] = {}
        self._r_pp: dict[frozenset, np.ndarray] = {}
        self._z: dict[str, np.ndarray] = {}

    @property
    def p_floor(self) -> float:
        """Smallest p the chosen method can give (0 for the continuous analytic p)."""
        return 2.0 / (self.n_bootstrap + 1) if self.p_method == "bootstrap" else 0.0

    def method(self, contrast: Contrast) -> str:
        """Key of :data:`P_METHODS` that gives ``contrast`` its p."""
        if self.p_method == "bootstrap":
            return "bootstrap"
        return "williams" if contrast.is_pair else "olkinfinn"

    def needs(self, space: str) -> bool:
        """Whether any contrast uses ``space``."""
        return any(c.weight(space) != 0 for c in self.contrasts)

    def add(self, space: str, predictions: np.ndarray) -> None:
        """Fold the test predictions (n_test, n_voxels) of ``space`` into every contrast using it."""
        users = [c for c in self.contrasts if c.weight(space) != 0]
        if not users:
            return
        if np.shape(predictions) != self.y.shape:
            raise ValueError(f"predictions of {space} have shape {np.shape(predictions)}, responses {self.y.shape}")
        n, v = self.y.shape
        analytic = self.p_method == "analytic"
        partners = sorted({o for c in users for o in c.a + c.b if o != space and o in self._z})
        keep_z = analytic and any(set(c.a + c.b) - self._seen[c.name] - {space} for c in users)
        if analytic:
            self._r_y[space] = np.zeros(v)
            for o in partners:
                self._r_pp[frozenset((space, o))] = np.zeros(v)
            if keep_z:
                self._z[space] = np.zeros((n, v), np.float32)
        for start in range(0, v, self.voxel_batch):
            sl = slice(start, min(start + self.voxel_batch, v))
            y = np.asarray(self.y[:, sl], dtype=np.float64)
            pred = np.asarray(predictions[:, sl], dtype=np.float64)
            zp = _standardize(pred)
            observed = (_standardize(y) * zp).mean(0)
            if analytic:
                self._r_y[space][sl] = observed
                # r between predictions from their float32 z on both sides (the same whichever space came first),
                # re-standardised and multiplied in float64: consistent with the float64 r(y, .) to ~1e-7
                zq = zp.astype(np.float32)
                for o in partners:
                    self._r_pp[frozenset((space, o))][sl] = (_standardize(self._z[o][:, sl]) * _standardize(zq)).mean(0)
                if keep_z:
                    self._z[space][:, sl] = zq
            if self._counts is not None:
                boot = (
                    _weighted_r(
                        self._counts, torch.as_tensor(y, device=self.device), torch.as_tensor(pred, device=self.device)
                    )
                    .cpu()
                    .numpy()
                )
            for c in users:
                w = c.weight(space)
                self._observed[c.name][sl] += w * observed
                if self._counts is not None:
                    self._boot[c.name][:, sl] += (w * boot).astype(np.float32)
        for c in users:
            self._seen[c.name].add(space)
        # free the predictions no unfinished contrast needs any more
        unfinished = {o for c in self.contrasts if set(c.a + c.b) - self._seen[c.name] for o in c.a + c.b}
        for o in list(self._z):
            if o not in unfinished:
                del self._z[o]

    def result(self, name: str, fdr_alpha: float = DEFAULT_FDR_LEVEL) -> ContrastResult:
        """The finished contrast ``name``; every space it names must have been added."""
        contrast = next(c for c in self.contrasts if c.name == name)
        missing = sorted(set(contrast.a + contrast.b) - self._seen[name])
        if missing:
            raise RuntimeError(f"contrast {name}: no predictions added for {missing}")
        n = self.y.shape[0]
        difference = self._observed[name]
        method = self.method(contrast)
        statistic, df, near = None, None, None
        if method != "bootstrap":
            spaces = contrast.a + contrast.b
            pairs = [self._r_pp[frozenset((i, j))] for k, i in enumerate(spaces) for j in spaces[k + 1 :]]
            near = int(np.any(np.stack(pairs) >= NEAR_COLLINEAR_R, axis=0).sum())
        if method == "bootstrap":
            boot = self._boot[name]
            below = (boot <= 0).sum(0)
            above = (boot >= 0).sum(0)
            p = np.minimum(1.0, 2.0 * (1.0 + np.minimum(below, above)) / (1.0 + self.n_bootstrap))
        elif method == "williams":
            a, b = contrast.a[0], contrast.b[0]
            statistic, p = williams_t(self._r_y[a], self._r_y[b], self._r_pp[frozenset((a, b))], n)
            df = n - 3
        else:
            spaces = contrast.a + contrast.b
            r_pp = [[None if i == j else self._r_pp[frozenset((i, j))] for j in spaces] for i in spaces]
            statistic, p = dependent_r_contrast_t(
                np.stack([self._r_y[x] for x in spaces]), r_pp, [contrast.weight(x) for x in spaces], n
            )
            df = n - 3
        ci_low = ci_high = None
        if self.n_bootstrap:
            # per voxel, a block of voxels at a time: np.quantile sorts a copy of what it is given, which for the
            # whole (n_bootstrap, n_voxels) sums is their size again (0.8 GB at 1,000 resamples x 200,000 voxels)
            tail = (1.0 - self.ci_level) / 2.0
            boot = self._boot[name]
            ci_low, ci_high = np.empty((2, boot.shape[1]), np.float32)
            for start in range(0, boot.shape[1], self.voxel_batch):
                sl = slice(start, start + self.voxel_batch)
                ci_low[sl], ci_high[sl] = np.quantile(boot[:, sl], [tail, 1.0 - tail], axis=0).astype(np.float32)
        return ContrastResult(
            difference=difference.astype(np.float32),
            p=p.astype(np.float32),
            q=fdr_bh(p, fdr_alpha).astype(np.float32),
            statistic=None if statistic is None else statistic.astype(np.float32),
            method=method,
            n_bootstrap=self.n_bootstrap,
            ci_low=ci_low,
            ci_high=ci_high,
            ci_level=self.ci_level,
            df=df,
            n_near_collinear=near,
        )


def contrast_test(
    y_test: np.ndarray,
    predictions_a: Sequence[np.ndarray],
    predictions_b: Sequence[np.ndarray],
    *,
    n_bootstrap: int = 1000,
    p_method: str = "analytic",
    seed: int = 0,
    fdr_alpha: float = DEFAULT_FDR_LEVEL,
    device: str = "cpu",
    voxel_batch: int = 4096,
) -> ContrastResult:
    """Contrast the mean test r of spaces A with that of spaces B, voxel by voxel.

    Parameters
    ----------
    y_test : ndarray, shape (n_test, n_voxels)
        Measured test responses.
    predictions_a, predictions_b : sequences of ndarray, each (n_test, n_voxels)
        Test-set predictions of the spaces on each side (one each for a pair).
    n_bootstrap : int
        Resamples of the test images (with replacement) for the interval
        (and the bootstrap p); 0: none.
    p_method : {'analytic', 'bootstrap'}
        See :class:`ContrastAccumulator`.
    """
    a = tuple(f"a{i}" for i in range(len(predictions_a)))
    b = tuple(f"b{i}" for i in range(len(predictions_b)))
    acc = ContrastAccumulator(
        y_test,
        [Contrast("AvsB", a, b)],
        n_bootstrap=n_bootstrap,
        p_method=p_method,
        seed=seed,
        device=device,
        voxel_batch=voxel_batch,
    )
    for name, pred in zip(a + b, (*predictions_a, *predictions_b)):
        acc.add(name, pred)
    return acc.result("AvsB", fdr_alpha)


def bootstrap_contrast(y_test, predictions_a, predictions_b, *, n_bootstrap: int = 1000, **kwargs) -> ContrastResult:
    """:func:`contrast_test` with the percentile-bootstrap p (the method before Williams' t)."""
    return contrast_test(y_test, predictions_a, predictions_b, n_bootstrap=n_bootstrap, p_method="bootstrap", **kwargs)


def default_contrasts(spaces: Sequence[tuple[str, str, str]]) -> list[Contrast]:
    """The paper's 3D-vs-2D contrasts among the available feature spaces.

    Parameters
    ----------
    spaces : sequence of (name, label, group)
        Feature spaces of the run: model-bank name (``taskonomy:keypoints3d``
        or a user space's name), file label, and group (2D, 3D, semantic, other).

    Returns
    -------
    The pairs keypoints3d − keypoints2d and edge_occlusion − edge_texture when
    both Taskonomy spaces are present, and the 3D group mean minus the 2D group
    mean when both groups have a space.
    """
    label = {name: lab for name, lab, _ in spaces}
    out = []
    for a, b in (("keypoints3d", "keypoints2d"), ("edge_occlusion", "edge_texture")):
        na, nb = f"taskonomy:{a}", f"taskonomy:{b}"
        if na in label and nb in label:
            out.append(Contrast(f"{label[na]}VS{label[nb]}", (na,), (nb,)))
    three = tuple(name for name, _, group in spaces if group == "3D")
    two = tuple(name for name, _, group in spaces if group == "2D")
    if three and two:
        out.append(Contrast("group3DVSgroup2D", three, two))
    return out
