"""The noise ceiling of a task's test-set responses and the split-half reliability: maps, and what the fits need.

Both need repeated images (at least 2 for the ceiling, 3 for the split-half map); without them a warning says
which maps are missing. The ceiling's reliability (ANOVA F test, BH-FDR) decides where ``stat-rsquarednorm`` is
defined (:data:`NORMALIZED_RULE`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.fdr import below_fdr_level
from ..encoding import ceiling_pvalue, fdr_bh, noise_ceiling
from ..encoding.noise_ceiling import split_half_reliability
from ..responses.base import Responses
from .data import Split
from .writer import TaskWriter

log = logging.getLogger(__name__)

#: Bytes of float64 working copies the noise-ceiling functions hold at once (they run a block of voxels at a time).
NOISE_CEILING_BLOCK_BYTES = 512 * 2**20

#: How ``stat-rsquarednorm`` is made (its sidecar); see encoding.noise_ceiling.noise_normalized_score.
NORMALIZED_RULE = {
    "Units": "fraction of the noise ceiling (1 = at the ceiling; x100 for Algonauts' percent)",
    "Formula": "max(r, 0)^2 / NC (Algonauts 2023 / NSD), r the test-set Pearson r, NC the stat-noiseceiling map",
    "CeilingReliability": "NaN where the noise ceiling is not reliably above 0: one-way ANOVA F test over the "
    "repeated images (trial responses z-scored within session) that their mean responses "
    "differ (signal variance > 0), BH-FDR over the voxels, kept where q < FDRLevel",
    "AboveCeiling": "values above 1 are kept as they are; NVoxelsAboveCeiling counts them",
}

#: How the noise ceiling is computed (its sidecar).
CEILING_METHOD = (
    "NSD: ncsnr = sqrt(max(0, 1 - noise_var)) / sqrt(noise_var); NC = ncsnr^2 / (ncsnr^2 + mean over "
    "test images of 1/n_i), n_i the presentations averaged into test image i (NAveragedTrials is the "
    "harmonic mean of n_i)"
)
SPLIT_HALF_METHOD = (
    "presentations of each repeated image split at random into two halves; Pearson r across images "
    "of the two half-averages (not Spearman-Brown corrected)"
)


def in_voxel_blocks(fn: Callable[..., Any], trial_data: np.ndarray, *args: Any, **kwargs: Any) -> Any:
    """``fn(trial_data, ...)`` a block of voxel columns at a time, the per-voxel outputs joined.

    The noise-ceiling functions make float64 copies of their input (a z-scored
    one and its square): three times the float32 trials, 25 GB for BOLD5000's
    5,254 trials at 200,000 voxels. Each voxel's value depends on its own
    column only (and the split-half's random split on the images only), so the
    blocks give the same numbers.
    """
    n_trials, n_voxels = trial_data.shape
    step = max(1, NOISE_CEILING_BLOCK_BYTES // (32 * max(1, n_trials)))
    if step >= n_voxels:
        return fn(trial_data, *args, **kwargs)
    parts = [fn(trial_data[:, a : a + step], *args, **kwargs) for a in range(0, n_voxels, step)]
    if isinstance(parts[0], tuple):  # per-voxel arrays, or a count shared by every block
        return tuple(np.concatenate(col) if isinstance(col[0], np.ndarray) else col[0] for col in zip(*parts))
    return np.concatenate(parts)


@dataclass(frozen=True)
class Ceiling:
    """The noise ceiling per voxel and where it is reliably above 0."""

    nc: np.ndarray
    reliable: np.ndarray


def noise_ceiling_maps(
    writer: TaskWriter, responses: Responses, split: Split, *, fdr_alpha: float, seed: int
) -> Ceiling | None:
    """Write the noise-ceiling and split-half maps the repeats allow; the ceiling (None without one)."""
    subject, task = writer.ents["sub"], writer.ents["task"]
    n_repeated = int((responses.n_presentations > 1).sum())
    ceiling = None
    if n_repeated >= 2:
        averaged = responses.n_presentations if responses.n_averaged is None else responses.n_averaged
        test_counts = averaged[split.test]  # trials in each test response (1 where one showing is kept)
        trial_sessions = responses.trials["session"].to_numpy(object)
        ncsnr, nc = in_voxel_blocks(
            noise_ceiling,
            responses.trial_data,
            responses.trial_image_index,
            n_average=test_counts,
            sessions=trial_sessions,
        )
        q_ceiling = fdr_bh(
            in_voxel_blocks(ceiling_pvalue, responses.trial_data, responses.trial_image_index, sessions=trial_sessions),
            fdr_alpha,
        )
        reliable = below_fdr_level(q_ceiling, fdr_alpha)
        nc_meta = {
            **writer.common,
            "NAveragedTrials": float(1.0 / np.mean(1.0 / test_counts)),
            "NImagesWithRepeats": n_repeated,
            "ZScoring": "trial responses z-scored per voxel within each session (NSD)",
            "Method": CEILING_METHOD,
        }
        writer.emit(nc, nc_meta, desc="noise", stat="noiseceiling")
        writer.emit(ncsnr, nc_meta, desc="noise", stat="ncsnr")
        ceiling = Ceiling(nc=nc, reliable=reliable)
    else:
        log.warning(
            "sub-%s task-%s: %d image(s) shown more than once; the noise ceiling needs at least 2, so "
            "no noise-ceiling or normalised R² maps",
            subject,
            task,
            n_repeated,
        )
    if n_repeated >= 3:
        reliability, n_rel = in_voxel_blocks(
            split_half_reliability, responses.trial_data, responses.trial_image_index, seed=seed
        )
        writer.emit(
            reliability,
            {**writer.common, "NImages": n_rel, "Seed": seed, "Method": SPLIT_HALF_METHOD},
            desc="noise",
            stat="splithalf",
        )
    elif n_repeated == 2:
        log.warning("sub-%s task-%s: only 2 repeated images; no split-half reliability map (needs 3)", subject, task)
    return ceiling
