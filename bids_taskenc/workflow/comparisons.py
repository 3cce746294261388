"""Comparisons of feature spaces within a task: the 3D-vs-2D contrast maps, and what limits their (and the
permutation p's) resolution under FDR."""

from __future__ import annotations

import logging

import numpy as np

from ..encoding.contrasts import NEAR_COLLINEAR_R, P_METHODS, ContrastAccumulator, default_contrasts
from ..encoding.stats import fdr_tests_needed_at_floor, make_permutations, permutation_p_floor
from .task import TaskRun

log = logging.getLogger(__name__)


def plan_contrasts(run: TaskRun) -> tuple[list, ContrastAccumulator | None]:
    """The task's contrasts and the accumulator their spaces' test predictions go into (None: no contrasts)."""
    cs, fit = run.settings.comparisons, run.settings.fit
    test = run.split.test
    contrasts = default_contrasts([(s.name, s.label, s.group) for s in run.ds.spaces]) if cs.contrast_bootstrap else []
    if contrasts and cs.contrast_p == "analytic" and len(test) < 4:
        log.warning(
            "sub-%s task-%s: %d test images; the contrast t needs at least 4, so no contrast maps",
            run.subject,
            run.task,
            len(test),
        )
        contrasts = []
    if not contrasts:
        return [], None
    accumulator = ContrastAccumulator(
        run.y_test,
        contrasts,
        n_bootstrap=cs.contrast_bootstrap,
        p_method=cs.contrast_p,
        seed=fit.seed,
        device=run.ds.device,
    )
    n_voxels = run.responses.n_voxels
    if accumulator.p_floor > 0:
        needed = fdr_tests_needed_at_floor(accumulator.p_floor, n_voxels, fit.fdr_alpha)
        if needed > 1:
            log.warning(
                "sub-%s task-%s: with %d bootstrap resamples the smallest contrast p is %.3g, so FDR at %.3g "
                "over %d voxels declares contrast voxels only when at least %d of them reach it; use "
                "--contrast-p analytic (Williams' t, continuous p) or at least %d resamples",
                run.subject,
                run.task,
                cs.contrast_bootstrap,
                accumulator.p_floor,
                fit.fdr_alpha,
                n_voxels,
                int(np.ceil(needed)),
                int(np.ceil(2 * n_voxels / fit.fdr_alpha - 1)),
            )
    return contrasts, accumulator


def plan_permutations(run: TaskRun) -> np.ndarray | None:
    """The test-image permutations of the ROI p (None without ROIs or permutations); a warning when the
    permutation p's floor is too coarse for FDR over the voxels."""
    fit = run.settings.fit
    n_voxels = run.responses.n_voxels
    if fit.n_permutations:
        floor = permutation_p_floor(fit.n_permutations, run.split.test_groups)
        needed = fdr_tests_needed_at_floor(floor, n_voxels, fit.fdr_alpha)
        if needed > 1:
            log.warning(
                "sub-%s task-%s: with %d permutations%s the smallest p is about 1/%d, so FDR at %.3g over %d "
                "voxels declares voxels only when at least %d of them reach it; %s",
                run.subject,
                run.task,
                fit.n_permutations,
                "" if run.split.test_groups is None else " (circular shifts within the held-out groups)",
                round(1 / floor),
                fit.fdr_alpha,
                n_voxels,
                int(np.ceil(needed)),
                f"use at least {int(np.ceil(n_voxels / fit.fdr_alpha))} permutations for single-voxel resolution, "
                "or analytic p (--n-permutations 0)"
                if floor <= 1.0 / (fit.n_permutations + 1)
                else "more permutations cannot help: hold out more runs or sessions (only so many distinct "
                "shifts exist), or use analytic p",
            )
    if run.rois and fit.n_permutations:
        return make_permutations(len(run.split.test), fit.n_permutations, fit.seed, run.split.test_groups)
    return None


def write_contrasts(run: TaskRun, contrasts: list, accumulator: ContrastAccumulator | None) -> None:
    """Each contrast's difference map, its p and q (and bootstrap CI bounds)."""
    if not contrasts:
        return
    if accumulator is None:
        raise ValueError(f"{len(contrasts)} contrasts to write but no accumulator of their test predictions")
    fit = run.settings.fit
    alpha, emit = fit.fdr_alpha, run.writer.emit
    for contrast in contrasts:
        res = accumulator.result(contrast.name, alpha)
        meta = {
            **run.writer.common,
            "Contrast": {
                "Name": contrast.name,
                "A": list(contrast.a),
                "B": list(contrast.b),
                "Statistic": "mean test-set Pearson r of A minus mean test-set Pearson r of B",
                "PValueMethod": res.method,
                "Test": P_METHODS[res.method],
                "NTest": len(run.split.test),
                **({"DegreesOfFreedom": res.df} if res.df is not None else {}),
                **(
                    {"NNearCollinear": res.n_near_collinear, "NearCollinearR": NEAR_COLLINEAR_R}
                    if res.n_near_collinear is not None
                    else {}
                ),
                "NBootstrap": res.n_bootstrap,
                **({"CILevel": res.ci_level} if res.n_bootstrap else {}),
                **(
                    {
                        "IndependenceAssumption": "the p-value and the bootstrap treat the test images as "
                        "independent, although whole runs or sessions were held out (--test-split); with "
                        "temporally structured noise they can be anti-conservative"
                    }
                    if run.split.test_groups is not None
                    else {}
                ),
                "Seed": fit.seed,
            },
            "FDRLevel": alpha,
        }
        emit(res.difference, meta, desc=contrast.name, stat="rdiff")
        emit(
            res.p,
            {**meta, "Description": f"Two-sided p of rdiff != 0 ({res.method})"},
            fill=1.0,
            desc=contrast.name,
            stat="p",
        )
        if res.ci_low is not None and res.ci_high is not None:  # both or neither: a bootstrap interval
            for stat, values in (("rdifflow", res.ci_low), ("rdiffhigh", res.ci_high)):
                emit(values, meta, desc=contrast.name, stat=stat)
        emit(
            res.q,
            {**meta, "Description": "Benjamini-Hochberg FDR q of the contrast p, over the mask voxels"},
            fill=1.0,
            desc=contrast.name,
            stat="q",
        )
        significant = res.q < alpha
        log.info(
            "sub-%s task-%s contrast %s: %d voxels q<%.3g (A>B %d, B>A %d)",
            run.subject,
            run.task,
            contrast.name,
            int(np.sum(significant)),
            alpha,
            int(np.sum(significant & (res.difference > 0))),
            int(np.sum(significant & (res.difference < 0))),
        )
        if res.n_near_collinear:
            log.info(
                "sub-%s task-%s contrast %s: in %d voxels two of its predictions correlate >= %g over the test images "
                "(near-collinear: the spaces predict almost the same thing there; NNearCollinear in the sidecar)",
                run.subject,
                run.task,
                contrast.name,
                res.n_near_collinear,
                NEAR_COLLINEAR_R,
            )
