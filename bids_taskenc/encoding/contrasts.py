"""Per-voxel contrasts of prediction accuracy between feature spaces (the paper's Fig. 3).

A contrast compares the test-set Pearson r of feature space A with that of B
(for example keypoints3d − keypoints2d), or the mean r of a group of spaces
with that of another group (3D − 2D). Its uncertainty comes from a bootstrap
over test images: the same resampled images for every space, so the pairing
that makes the difference precise is kept.

A resample is a vector of counts over the test images; weighted sums make the
resampled correlations a few matrix products, with no copy of the data.
Predictions arrive one feature space at a time (:class:`ContrastAccumulator`),
so a run never holds more than one space's predictions besides the bootstrap
sums.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .stats import fdr_bh


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
        Two-sided bootstrap p of difference ≠ 0:
        ``2 · (1 + #{resamples on the far side of 0}) / (1 + n_bootstrap)``,
        capped at 1 (percentile test: the bootstrap distribution of the
        difference is centred near the observed one; the share of it beyond 0
        estimates the one-sided p).
    q : ndarray, shape (n_voxels,)
        Benjamini-Hochberg q of ``p`` over the voxels.
    n_bootstrap : int
    """

    difference: np.ndarray
    p: np.ndarray
    q: np.ndarray
    n_bootstrap: int


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
    return np.stack([np.bincount(gen.integers(0, n_test, n_test), minlength=n_test)
                     for _ in range(n_bootstrap)]).astype(np.float64)


class ContrastAccumulator:
    """Bootstrap contrasts built one feature space at a time.

    Parameters
    ----------
    y_test : ndarray, shape (n_test, n_voxels)
        Measured test responses.
    contrasts : sequence of Contrast
    n_bootstrap : int
        Resamples of the test images (with replacement); the same for every
        space and contrast.
    seed : int
    device : str
        Torch device for the products.
    voxel_batch : int
        Voxels per product; bounds the temporary (n_bootstrap, batch) arrays.

    Notes
    -----
    Memory: one float32 (n_bootstrap, n_voxels) sum per contrast.
    """

    def __init__(self, y_test: np.ndarray, contrasts: Sequence[Contrast], *, n_bootstrap: int = 1000,
                 seed: int = 0, device: str = "cpu", voxel_batch: int = 4096):
        self.y = np.asarray(y_test, dtype=np.float64)
        if self.y.ndim != 2:
            raise ValueError(f"y_test must be (n_test, n_voxels), got shape {self.y.shape}")
        self.contrasts = list(contrasts)
        self.n_bootstrap = int(n_bootstrap)
        self.device = device
        self.voxel_batch = int(voxel_batch)
        n, v = self.y.shape
        self._counts = torch.as_tensor(bootstrap_counts(n, self.n_bootstrap, seed), device=device)
        self._observed = {c.name: np.zeros(v) for c in self.contrasts}
        self._boot = {c.name: np.zeros((self.n_bootstrap, v), np.float32) for c in self.contrasts}
        self._seen: dict[str, set[str]] = {c.name: set() for c in self.contrasts}

    def needs(self, space: str) -> bool:
        """Whether any contrast uses ``space``."""
        return any(c.weight(space) != 0 for c in self.contrasts)

    def add(self, space: str, predictions: np.ndarray) -> None:
        """Fold the test predictions (n_test, n_voxels) of ``space`` into every contrast using it."""
        users = [c for c in self.contrasts if c.weight(space) != 0]
        if not users:
            return
        if np.shape(predictions) != self.y.shape:
            raise ValueError(f"predictions of {space} have shape {np.shape(predictions)}, "
                             f"responses {self.y.shape}")
        n, v = self.y.shape
        ones = torch.ones((1, n), dtype=torch.float64, device=self.device)
        for start in range(0, v, self.voxel_batch):
            sl = slice(start, min(start + self.voxel_batch, v))
            yb = torch.as_tensor(self.y[:, sl], device=self.device)
            pb = torch.as_tensor(np.asarray(predictions[:, sl], dtype=np.float64), device=self.device)
            observed = _weighted_r(ones, yb, pb)[0].cpu().numpy()
            boot = _weighted_r(self._counts, yb, pb).cpu().numpy()
            for c in users:
                w = c.weight(space)
                self._observed[c.name][sl] += w * observed
                self._boot[c.name][:, sl] += (w * boot).astype(np.float32)
        for c in users:
            self._seen[c.name].add(space)

    def result(self, name: str, fdr_alpha: float = 0.05) -> ContrastResult:
        """The finished contrast ``name``; every space it names must have been added."""
        contrast = next(c for c in self.contrasts if c.name == name)
        missing = sorted(set(contrast.a + contrast.b) - self._seen[name])
        if missing:
            raise RuntimeError(f"contrast {name}: no predictions added for {missing}")
        boot = self._boot[name]
        below = (boot <= 0).sum(0)
        above = (boot >= 0).sum(0)
        p = np.minimum(1.0, 2.0 * (1.0 + np.minimum(below, above)) / (1.0 + self.n_bootstrap))
        return ContrastResult(difference=self._observed[name].astype(np.float32), p=p.astype(np.float32),
                              q=fdr_bh(p, fdr_alpha).astype(np.float32), n_bootstrap=self.n_bootstrap)


def bootstrap_contrast(
    y_test: np.ndarray,
    predictions_a: Sequence[np.ndarray],
    predictions_b: Sequence[np.ndarray],
    *,
    n_bootstrap: int = 1000,
    seed: int = 0,
    fdr_alpha: float = 0.05,
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
        Resamples of the test images (with replacement).
    """
    a = tuple(f"a{i}" for i in range(len(predictions_a)))
    b = tuple(f"b{i}" for i in range(len(predictions_b)))
    acc = ContrastAccumulator(y_test, [Contrast("AvsB", a, b)], n_bootstrap=n_bootstrap, seed=seed,
                              device=device, voxel_batch=voxel_batch)
    for name, pred in zip(a + b, (*predictions_a, *predictions_b)):
        acc.add(name, pred)
    return acc.result("AvsB", fdr_alpha)


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
