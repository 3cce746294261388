"""Calibration of the task tree's clade support (issue 23 §2; docs/tree-support.md).

Every participant has six task maps over a cubic grid (``--grid``, default 24
voxels a side): a shared smooth pattern plus each task's own smooth noise (a star
tree: no pair of tasks is more alike than another), thresholded at 1 (the voxels
that "survive"). Every clade of the observed tree (of the participants' mean
similarity) but the root is spurious; a calibrated support gives at most 5 % of
them a support >= 0.95. With ``--planted`` the tasks form two clusters of three
(each cluster adds its own smooth pattern, the task noise is scaled by 0.6): the two
planted clades should keep support >= 0.95, and the split that average linkage
forces inside each cluster of three is spurious (it is what "spurious" counts then).

Noise (``NOISES``): ``gaussian``, Gaussian-smoothed white noise of sigma = 2
voxels (the check the README quoted); ``mixed``, a heavy-tailed spatial
autocorrelation: the sum of two independent smoothed noises holding 60 % of the
variance at sigma = 1.5 and 40 % at sigma = 6 voxels (autocorrelation
``0.6 exp(-d^2 / 9) + 0.4 exp(-d^2 / 144)``, the long tail AFNI's 3dFWHMx -acf
models; Eklund et al. 2016). Periodic grid; participants are independent (each has
its own shared pattern, cluster patterns and noise).

Resamplings (``METHODS``): ``voxel`` (single voxels), ``block`` (the group level's
spatial block bootstrap: ``resampling.block_design``), ``boxN`` (fixed N-voxel
boxes), ``participant`` (participants drawn with replacement), ``participant-t``
(the mean matrix's Student-t draws), ``default`` (what ``GroupSettings()`` resolves
to for that many participants). For ``block`` the line also gives the fraction of
participant designs whose boxes do not cover the autocorrelation and the rate where
they all do.

Run: ``python benchmarks/tree_support.py`` (both noises; block, participant and
participant-t; 1, 3 and 5 participants; 40 simulations of 200 resamples, seed 0;
``--sims 100`` for the numbers in docs/tree-support.md) or ``--quick``; add
``--planted``, ``--grid 48``, ``--method voxel box14``. A simulation's maps come from
``numpy.random.default_rng(seed)`` in order, so every line is reproducible. The test
version is ``tests/group/test_group_tree_calibration.py``.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import gaussian_filter

from bids_taskenc.group import resampling, similarity, tree

log = logging.getLogger("tree_support")

SHAPE = (24, 24, 24)
N_TASKS = 6
THRESHOLD = 1.0
HIGH_SUPPORT = 0.95

#: noise name -> ((variance fraction, sigma in voxels), ...)
NOISES = {
    "gaussian": ((1.0, 2.0),),
    "mixed": ((0.6, 1.5), (0.4, 6.0)),
}
METHODS = ("voxel", "block", "participant", "participant-t", "default")  # and boxN: fixed N-voxel boxes
PLANTED = (0, 0, 0, 1, 1, 1)


def noise_fields(rng: np.random.Generator, n: int, noise: str, shape=SHAPE) -> np.ndarray:
    """``(n, *shape)`` unit-variance noise with the autocorrelation of ``NOISES[noise]`` (periodic grid)."""
    out = np.zeros((n, *shape))
    for weight, sigma in NOISES[noise]:
        for i in range(n):
            z = gaussian_filter(rng.normal(size=shape), sigma, mode="wrap")
            out[i] += np.sqrt(weight) * z / z.std()
    return out


def participant_maps(rng: np.random.Generator, noise: str, clusters=None, shape=SHAPE) -> tuple[np.ndarray, np.ndarray]:
    """Unthresholded and thresholded ``(N_TASKS, *shape)`` maps of one participant.

    A shared pattern + each task's own noise; with ``clusters`` (cluster index per task) each
    cluster adds its own pattern and the task noise is scaled by 0.6, so the clusters are clades.
    """
    base = noise_fields(rng, 1, noise, shape)[0]
    own = noise_fields(rng, N_TASKS, noise, shape)
    if clusters is None:
        vols = base + own
    else:
        clusters = np.asarray(clusters)
        patterns = noise_fields(rng, int(clusters.max()) + 1, noise, shape)
        vols = base + patterns[clusters] + 0.6 * own
    return vols, np.where(vols > THRESHOLD, vols, 0.0)


def bootstrap_matrices(
    method: str,
    maps: list[tuple[np.ndarray, np.ndarray]],
    n_bootstrap: int,
    rng: np.random.Generator,
    problems: list | None = None,
) -> np.ndarray:
    """``(B, F, F)`` resampled similarity matrices of the participants' ``(unthresholded, thresholded)`` maps.

    ``problems`` collects, for ``block``, each participant's ``BlockDesign.problem`` (None: the boxes cover it).
    """
    full = np.ones(maps[0][0].shape[1:], dtype=bool)
    flat = [thr.reshape(thr.shape[0], -1) for _, thr in maps]
    if method == "participant":
        matrices = [similarity.cosine_similarity(x) for x in flat]
        return resampling.participant_bootstrap_similarities(matrices, n_bootstrap, rng)
    if method == "participant-t":
        matrices = [similarity.cosine_similarity(x) for x in flat]
        return resampling.participant_t_similarities(matrices, n_bootstrap, rng)
    out = np.zeros((n_bootstrap, N_TASKS, N_TASKS))
    for (vols, _), x in zip(maps, flat):
        if method == "voxel":
            out += similarity.bootstrap_similarities(x, n_bootstrap, rng)
            continue
        if method.startswith("box"):
            labels = resampling.block_labels(full, (int(method[3:]),) * 3)
        else:  # the group level's rule
            design = resampling.block_design(vols, full, (1.0, 1.0, 1.0))
            labels = design.labels
            if problems is not None:
                problems.append(design.problem)
        out += resampling.block_bootstrap_similarities(x, labels, n_bootstrap, rng)
    return out / len(maps)


def default_method(n_participants: int) -> str:
    """The resampling the group level uses by default for ``n_participants``."""
    from bids_taskenc.workflow.group import GroupSettings

    return resampling.resolve_tree_bootstrap(GroupSettings().tree_bootstrap, n_participants)


@dataclass
class Calibration:
    """What one setting gave: spurious clades, how many reached ``HIGH_SUPPORT``, planted supports."""

    n_spurious: int = 0
    n_high: int = 0
    planted: list[float] = field(default_factory=list)
    problems: list = field(default_factory=list)
    n_spurious_covered: int = 0
    n_high_covered: int = 0

    @property
    def rate_covered(self) -> float:
        """The rate among the simulations whose boxes all cover the autocorrelation."""
        return self.n_high_covered / self.n_spurious_covered if self.n_spurious_covered else float("nan")

    @property
    def descriptive(self) -> float:
        """Fraction of the block designs whose boxes do not cover the autocorrelation (``BlockDesign.problem``)."""
        return float(np.mean([p is not None for p in self.problems])) if self.problems else float("nan")

    @property
    def rate(self) -> float:
        return self.n_high / self.n_spurious if self.n_spurious else float("nan")

    @property
    def planted_high(self) -> float:
        """Fraction of the planted clades (where the observed tree has them) with support >= ``HIGH_SUPPORT``."""
        return float(np.mean(np.asarray(self.planted) >= HIGH_SUPPORT)) if self.planted else float("nan")


def calibrate(
    method: str,
    noise: str,
    *,
    n_participants: int = 1,
    n_sims: int = 40,
    n_bootstrap: int = 200,
    seed: int = 0,
    clusters=None,
    shape=SHAPE,
) -> Calibration:
    """Simulate ``n_sims`` groups, build the tree of their mean similarity, score each clade's support.

    Clades equal to a planted cluster go to ``planted``; every other clade but the root is spurious.
    """
    if method == "default":
        method = default_method(n_participants)
    rng = np.random.default_rng(seed)
    want = set()
    if clusters is not None:
        labels = np.asarray(clusters)
        want = {tree.indices_to_mask(np.flatnonzero(labels == c)) for c in set(clusters)}
    out = Calibration()
    for _ in range(n_sims):
        maps = [participant_maps(rng, noise, clusters, shape) for _ in range(n_participants)]
        mean = np.mean([similarity.cosine_similarity(thr.reshape(N_TASKS, -1)) for _, thr in maps], axis=0)
        observed = tree.build_tree(mean)
        problems: list = []
        boots = bootstrap_matrices(method, maps, n_bootstrap, rng, problems)
        out.problems += problems
        covered = bool(problems) and all(p is None for p in problems)
        support = tree.bootstrap_support(observed, boots)[:-1]  # the root is in every tree
        for mask, s in zip(tree.clade_masks(observed)[:-1], support):
            if mask in want:
                out.planted.append(float(s))
            else:
                out.n_spurious += 1
                out.n_high += bool(s >= HIGH_SUPPORT)
                out.n_spurious_covered += covered
                out.n_high_covered += covered and bool(s >= HIGH_SUPPORT)
    return out


def _line(noise: str, method: str, n_part: int, cal: Calibration) -> str:
    planted = (
        f"  planted: {len(cal.planted)} found, {cal.planted_high:.1%} >= 0.95, min {min(cal.planted):.3f}"
        if cal.planted
        else ""
    )
    called = (
        f"  boxes not covering the autocorrelation: {cal.descriptive:.0%}; where they do: "
        f"{cal.rate_covered:.1%} of {cal.n_spurious_covered}"
        if cal.problems
        else ""
    )
    return (
        f"{noise:9s} {method:12s} participants={n_part}  spurious={cal.n_spurious:4d}  "
        f">=0.95: {cal.rate:6.1%}{planted}{called}"
    )


def _method(text: str) -> str:
    if text in METHODS or (text.startswith("box") and text[3:].isdigit() and int(text[3:]) > 0):
        return text
    raise argparse.ArgumentTypeError(f"unknown method {text!r}: {', '.join(METHODS)} or boxN")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--noise", nargs="+", choices=sorted(NOISES), default=sorted(NOISES))
    parser.add_argument(
        "--method",
        nargs="+",
        type=_method,
        default=["block", "participant", "participant-t"],
        help=f"{', '.join(METHODS)} or boxN (fixed boxes of N voxels)",
    )
    parser.add_argument("--grid", type=int, default=SHAPE[0], help="edge of the cubic grid in voxels")
    parser.add_argument("--participants", nargs="+", type=int, default=[1, 3, 5])
    parser.add_argument("--sims", type=int, default=40)
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--planted", action="store_true", help="two planted clusters of three tasks")
    parser.add_argument("--quick", action="store_true", help="10 simulations, 100 resamples")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sims, n_boot = (10, 100) if args.quick else (args.sims, args.bootstrap)
    truth = "planted clusters 3+3" if args.planted else "star tree"
    shape = (args.grid,) * 3
    log.info("grid %s, %d tasks, threshold %g, %d simulations, %d resamples, seed %d, %s",
             shape, N_TASKS, THRESHOLD, sims, n_boot, args.seed, truth)  # fmt: skip
    for noise in args.noise:
        for method in args.method:
            for n_part in args.participants:
                if method.startswith("participant") and n_part < 3:
                    continue
                cal = calibrate(method, noise, n_participants=n_part, n_sims=sims, n_bootstrap=n_boot,
                                seed=args.seed, clusters=PLANTED if args.planted else None, shape=shape)  # fmt: skip
                log.info("%s", _line(noise, method, n_part, cal))


if __name__ == "__main__":
    main()
