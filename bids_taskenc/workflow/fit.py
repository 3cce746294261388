"""Fit each feature space's encoding model and write what it gives: maps, ROI rows, weights, features.

A fit is taken from the work cache when its key (:func:`bids_taskenc.workflow.cache.fit_key`: the responses, the
features' bytes, the fit settings, the device, what it returns) is there. Under ``--mem`` the fit's voxel batches
get what is left of the ceiling (:func:`~bids_taskenc.workflow.resources.fit_mem_gb`).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import numpy as np

from ..core.fdr import below_fdr_level
from ..encoding import fit_encoding_model, noise_normalized_score
from ..encoding.alphas import alpha_grid
from ..encoding.roi import roi_permutation_p, roi_summary
from ..features.user import save_feature_space
from ..outputs.atomic import atomic_path, write_json
from ..outputs.naming import sidecar_path
from ..outputs.statistics import per_space_statistics
from .cache import fit_key
from .noise import NORMALIZED_RULE, Ceiling
from .resources import fit_mem_gb
from .task import TaskRun

if TYPE_CHECKING:
    from ..encoding.result import EncodingResult, VoxelwiseFit

log = logging.getLogger(__name__)

#: The weights file's arrays (its sidecar).
WEIGHT_ARRAYS = {
    "weights": "(n_features, n_voxels) on standardised features",
    "feature_mean, feature_scale": "training statistics: x_std = (x - mean) / scale",
    "intercept": "(n_voxels,) training mean of the responses",
    "alpha": "(n_voxels,) chosen ridge penalty",
    "voxel_indices": "(n_voxels,) flat C-order indices of the voxels in the brain mask grid",
}


def fit_space(run: TaskRun, X: np.ndarray, keep_predictions: bool) -> EncodingResult:
    """One space's :class:`~bids_taskenc.encoding.result.EncodingResult`, from the work cache when fitted before."""
    fit, save_weights = run.settings.fit, run.settings.outputs.save_weights
    Y, train, test, device = run.Y, run.split.train, run.split.test, run.ds.device
    # under --mem the fit's batches get what is left: resident memory (taken when the fit starts), its float64
    # copies of X and its outputs (test predictions, weights) come off; Y's rows are gathered per voxel batch
    extra = (2 * X.nbytes, keep_predictions * 4 * len(test) * Y.shape[1] + save_weights * 4 * X.shape[1] * Y.shape[1])
    key = fit_key(run.settings, run.response_key, X, device, keep_predictions)
    return run.cache.get_or_compute(
        "encoding",
        key,
        lambda: fit_encoding_model(
            X[train],
            Y,
            X[test],
            Y,
            train_rows=train,
            test_rows=test,
            test_groups=run.split.test_groups,
            alphas=alpha_grid(fit.alpha_grid, X.shape[1], fit.alphas),
            n_folds=fit.cv_folds,
            groups=run.split.cv_groups,
            validation_fraction=fit.test_fraction if fit.cv_scheme == "split" else None,
            cv_score=fit.cv_score,
            standardize=fit.standardize,
            return_weights=save_weights,
            precision=fit.precision,
            device=device,
            mem_gb=fit_mem_gb(run.settings.resources.mem_gb, device, *extra, given_as=run.settings.resources.mem_label),
            seed=fit.seed,
            n_permutations=fit.n_permutations,
            p_sides=fit.p_sides,
            fdr_alpha=fit.fdr_alpha,
            return_predictions=keep_predictions,
            progress=run.settings.outputs.progress,
        ),
    )


def space_metadata(run: TaskRun, space, X: np.ndarray, result: VoxelwiseFit) -> dict:
    """The sidecar of a space's maps: the task's common keys, the feature space, the fit's settings."""
    return {
        **run.writer.common,
        "FeatureSpace": space.name,
        "FeatureLabel": space.label,
        "FeatureGroup": space.group,
        "FeatureDescription": space.description,
        "FeatureDimension": int(X.shape[1]),
        "FeatureProvenance": space.provenance,
        "FDRLevel": run.settings.fit.fdr_alpha,
        **result.metadata(),
        "AlphaGridRule": run.settings.fit.alpha_grid,
    }


def write_space_maps(run: TaskRun, space, result: EncodingResult, meta: dict, ceiling: Ceiling | None) -> None:
    """The statistic maps of a space, and its noise-normalised score where there is a ceiling."""
    emit = run.writer.emit
    for statistic in per_space_statistics():  # the registry of outputs/statistics.py
        emit(statistic.values(result), meta, fill=statistic.fill, desc=space.label, stat=statistic.name)
    if ceiling is None:
        return
    norm = noise_normalized_score(result.r, ceiling.nc, ceiling.reliable)
    n_above = int(np.sum(norm > 1))
    if n_above:
        log.warning(
            "sub-%s task-%s %s: %d voxel(s) score above their noise ceiling (rsquarednorm > 1, "
            "max %.2f); kept as they are (noise in r or in the ceiling)",
            run.subject,
            run.task,
            space.name,
            n_above,
            float(np.nanmax(norm)),
        )
    emit(
        norm,
        {
            **meta,
            **NORMALIZED_RULE,
            "NVoxelsCeilingReliable": int(ceiling.reliable.sum()),
            "NVoxelsAboveCeiling": n_above,
        },
        fill=np.nan,
        desc=space.label,
        stat="rsquarednorm",
    )


def add_roi_rows(run: TaskRun, space, result: EncodingResult) -> None:
    """The space's rows of the ROI table (with the permutation p of each ROI's mean r when asked for)."""
    roi_p = {}
    if run.roi_permutations is not None:
        roi_p = roi_permutation_p(
            run.y_test, _kept(result.predictions, "test predictions"), run.rois, run.roi_permutations
        )
    for row in roi_summary(result.r, result.r2, result.q, run.rois, run.settings.fit.fdr_alpha):
        if run.roi_permutations is not None:
            row["p_mean_r"] = roi_p[row["roi"]]
        run.roi_rows.append({"feature_space": space.label, "feature_group": space.group, **row})


def write_weights(run: TaskRun, space, result: EncodingResult, meta: dict) -> None:
    """``..._desc-<label>_weights.npz`` and its sidecar: what predicts a new image's responses."""
    weights_path = run.writer.path(desc=space.label, suffix="weights", extension=".npz")
    with atomic_path(weights_path) as tmp:
        np.savez(
            tmp,
            weights=_kept(result.weights, "weights"),
            feature_mean=result.feature_mean,
            feature_scale=result.feature_scale,
            intercept=result.intercept,
            alpha=result.alpha,
            voxel_indices=np.flatnonzero(np.asarray(run.responses.mask_img.dataobj).ravel() > 0),
        )
    write_json(
        sidecar_path(weights_path),
        {
            **meta,
            "Arrays": WEIGHT_ARRAYS,
            "Prediction": "y = ((x - feature_mean) / feature_scale) @ weights + intercept",
        },
    )


def _kept(array: np.ndarray | None, what: str) -> np.ndarray:
    """An array the fit was asked to keep (an error, not a file of None, if it did not)."""
    if array is None:
        raise RuntimeError(f"the encoding fit kept no {what} although they were asked for")
    return array


def save_features(run: TaskRun, space, X: np.ndarray) -> None:
    """``features/sub-X/task-Y/<label>/`` in the staging folder, as a user feature space reads it back."""
    folder = run.writer.staging / "features" / f"sub-{run.subject}" / f"task-{run.task}" / space.label
    save_feature_space(
        folder,
        X,
        run.responses.image_ids,
        {"group": space.group, "description": space.description, "name": space.name, "provenance": space.provenance},
    )


def fit_and_write_space(run: TaskRun, space, ceiling: Ceiling | None, accumulator) -> dict:
    """Fit one space, write its outputs, hand its predictions to the contrasts; its summary."""
    X = run.features[space.name]
    keep_predictions = (accumulator is not None and accumulator.needs(space.name)) or run.roi_permutations is not None
    t0 = time.perf_counter()
    result = fit_space(run, X, keep_predictions)
    seconds = time.perf_counter() - t0
    run.laps.lap(f"fit {space.name}")
    fdr_alpha = run.settings.fit.fdr_alpha
    meta = space_metadata(run, space, X, result)
    write_space_maps(run, space, result, meta, ceiling)
    add_roi_rows(run, space, result)
    if accumulator is not None and accumulator.needs(space.name):
        accumulator.add(space.name, result.predictions)
    if run.settings.outputs.save_weights:
        write_weights(run, space, result, meta)
    n_sig = int(np.sum(below_fdr_level(result.q, fdr_alpha)))
    log.info(
        "sub-%s task-%s %s: %d/%d voxels q<%.3g, max r %.3f (%.2f s)",
        run.subject,
        run.task,
        space.name,
        n_sig,
        run.responses.n_voxels,
        fdr_alpha,
        np.nanmax(result.r),
        seconds,
    )
    if run.settings.outputs.save_features:
        save_features(run, space, X)
    return {"n_significant": n_sig, "max_r": float(np.nanmax(result.r)), "seconds": round(seconds, 3)}
