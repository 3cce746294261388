"""One participant, end to end: trials -> responses -> features -> encoding models -> maps.

All checks that can fail on bad input (events, stimuli, feature rows, BOLD and
mask grids) run before anything is written. Outputs are written into a staging
folder inside the output folder and moved into place when the participant is
complete, so a failed participant leaves nothing half-written.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..bids.dataset import RunFiles
from ..bids.files import check_nifti, check_present
from ..bids.betas import find_beta_files
from ..bids.preprocessed import find_preprocessed
from ..bids.rois import find_roi_masks, load_roi_vectors
from ..bids.surfaces import find_surfaces
from ..bids.trials import attach_stimulus_paths, build_trials
from ..encoding.contrasts import P_METHODS, ContrastAccumulator, default_contrasts
from ..encoding.roi import roi_permutation_p, roi_summary
from ..encoding.stats import fdr_tests_needed_at_floor, make_permutations
from ..encoding import (ceiling_pvalue, fdr_bh, fit_encoding_model, noise_ceiling, noise_normalized_score,
                        train_test_split_indices)
from ..encoding.noise_ceiling import split_half_reliability
from ..errors import InputDataError, UsageError
from ..features.base import FeatureError
from ..features.pipeline import featurize
from ..features.user import save_feature_space
from ..outputs.atomic import atomic_path, write_json, write_tsv
from ..outputs.derivatives import bids_uri, write_mask, write_statmap
from ..outputs.naming import derivative_path, sidecar_path
from ..outputs.surfaces import project_statmaps
from ..responses.betas import beta_responses
from ..responses.lsa import lsa_responses
from ..responses.travg import tr_average_responses
from .partitioning import resolve_partitionings, run_partitionings
from ..outputs.staging import make_staging_folder, remove_stale_staging
from .timing import Laps
from .workcache import WorkCache, file_identity

log = logging.getLogger(__name__)

#: Statistics written for every feature space (stat entity -> EncodingResult attribute).
STAT_MAPS = {"r": "r", "rsquared": "r2", "p": "p", "q": "q", "alpha": "alpha", "cvscore": "cv_score"}


@dataclass
class ParticipantContext:
    """Everything one participant run needs besides its own runs."""

    args: object
    output_dir: Path
    work_dir: Path
    derivative_layouts: list
    space: str
    spaces: list  # FeatureSpace
    stimuli_dirs: list[Path]
    roi_dir: Path | None
    device: str
    provenance: dict = field(default_factory=dict)  # versions, command line, config
    links: dict = field(default_factory=dict)  # dataset name -> folder, for bids: URIs in sidecars


#: How ``stat-rsquarednorm`` is made (its sidecar); see encoding.noise_ceiling.noise_normalized_score.
NORMALIZED_RULE = {
    "Units": "fraction of the noise ceiling (1 = at the ceiling; x100 for Algonauts' percent)",
    "Formula": "max(r, 0)^2 / NC (Algonauts 2023 / NSD), r the test-set Pearson r, NC the stat-noiseceiling map",
    "CeilingReliability": "NaN where the noise ceiling is not reliably above 0: one-way ANOVA F test over the "
                          "repeated images (trial responses z-scored within session) that their mean responses "
                          "differ (signal variance > 0), BH-FDR over the voxels, kept where q < FDRLevel",
    "AboveCeiling": "values above 1 are kept as they are; NVoxelsAboveCeiling counts them"}

#: ``desc-`` labels the run writes itself; a feature space may not take them.
RESERVED_LABELS = {"noise", "brain", "roi", "split"}
#: Labels that TSV readers take for missing values (pandas' defaults, R's NA).
NA_STRINGS = {"na", "nan", "null", "none", "nil"}


def _check_features(spaces, image_ids: list[str]) -> None:
    """Reject labels that would collide with our own outputs; look every image up before any heavy work."""
    for space in spaces:
        if space.label.lower() in NA_STRINGS:
            raise FeatureError(f"feature space {space.name}: its label {space.label!r} reads as a missing value in "
                               "TSV files (pandas and R); rename its folder")
        if space.label in RESERVED_LABELS or "VS" in space.label:
            raise FeatureError(f"feature space {space.name}: its label {space.label!r} is reserved for the run's "
                               f"own outputs ({', '.join(sorted(RESERVED_LABELS))}, or containing 'VS' as the "
                               "contrasts do); rename its folder")
    for space in spaces:
        if not space.needs_images:
            space.lookup(image_ids)


def _check_feature_values(space, X: np.ndarray, image_ids: list[str], train: np.ndarray) -> None:
    """Non-finite features (NaN, inf, values beyond float32's range) are an error naming the space;
    features constant over the training images (nothing to fit: r = 0 everywhere) a warning."""
    finite = np.isfinite(X)
    if not finite.all():
        rows, cols = np.nonzero(~finite)
        raise InputDataError(
            f"feature space {space.name}: {int((~finite).sum())} feature value(s) are NaN or infinite (first: "
            f"image {image_ids[rows[0]]!r}, column {int(cols[0])}); features are float32, so |x| must stay "
            f"below {float(np.finfo(np.float32).max):.3g}: rescale the features")
    Xt = X[train]
    constant = Xt.max(0) == Xt.min(0) if len(Xt) else np.ones(X.shape[1], bool)
    if constant.all():
        log.warning("feature space %s: every one of its %d columns is constant over the training images; "
                    "it cannot predict anything (r = 0, p = 1 everywhere)", space.name, X.shape[1])
    elif constant.mean() > 0.5:
        log.warning("feature space %s: %d of its %d columns are constant over the training images",
                    space.name, int(constant.sum()), X.shape[1])


def _user_mask(args, target):
    """``--mask`` as given, or (``--resample-mask``) resampled by nearest neighbour onto ``target``'s grid."""
    if args.mask is None or not args.resample_mask or target is None:
        return args.mask
    import nibabel as nib
    from nilearn.image import resample_img

    mask, ref = nib.load(args.mask), nib.load(target)
    if mask.shape[:3] == ref.shape[:3] and np.allclose(mask.affine, ref.affine, atol=1e-3):
        return args.mask
    log.info("%s: --mask resampled (nearest neighbour) onto the grid of %s", args.mask, target)
    data = (np.asarray(mask.dataobj) > 0).astype(np.uint8)
    out = resample_img(nib.Nifti1Image(data, mask.affine), target_affine=ref.affine, target_shape=ref.shape[:3],
                       interpolation="nearest", force_resample=True, copy_header=True)
    return nib.Nifti1Image((np.asarray(out.dataobj) > 0).astype(np.uint8), ref.affine)


#: Bytes of float64 working copies the noise-ceiling functions hold at once (they run a block of voxels at a time).
NOISE_CEILING_BLOCK_BYTES = 512 * 2**20


def _in_voxel_blocks(fn, trial_data: np.ndarray, *args, **kwargs):
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
    parts = [fn(trial_data[:, a:a + step], *args, **kwargs) for a in range(0, n_voxels, step)]
    if isinstance(parts[0], tuple):  # per-voxel arrays, or a count shared by every block
        return tuple(np.concatenate(col) if isinstance(col[0], np.ndarray) else col[0] for col in zip(*parts))
    return np.concatenate(parts)


def _rss_bytes() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _fit_mem_gb(mem_gb: float | None, device: str, inputs: int, outputs: int) -> float | None:
    """The part of the ``--mem-gb`` ceiling a fit may use for its voxel batches.

    On the CPU, ``--mem-gb`` bounds the whole process: what it holds already
    (resident memory now: responses, features, contrast sums, the rows passed
    to the fit), what the fit copies inside (``inputs`` bytes: float64
    features) and what it returns (``outputs``: test predictions, weights)
    come off it first. On a GPU
    it bounds the device memory the fit uses (the host is not counted). An error
    when nothing would be left.
    """
    if mem_gb is None or str(device).startswith("cuda"):
        return mem_gb
    left = mem_gb * 1e9 - _rss_bytes() - inputs - outputs
    if left < 0.05 * mem_gb * 1e9:
        raise UsageError(f"--mem-gb {mem_gb:g}: the process already holds {_rss_bytes() / 1e9:.2f} GB and the fit's "
                         f"inputs and outputs need {(inputs + outputs) / 1e9:.2f} GB, leaving no room for its voxel "
                         "batches; raise --mem-gb")
    return left / 1e9


def _split_table(responses, train_idx, test_idx) -> pd.DataFrame:
    split = np.full(len(responses.image_ids), "train", dtype=object)
    split[test_idx] = "test"
    return pd.DataFrame({"stimulus": responses.image_ids, "split": split,
                         "n_presentations": responses.n_presentations,
                         "session": responses.image_sessions})


def _remove_stale_staging(output_dir: Path, subject: str) -> None:
    """Delete staging folders of ``subject`` that a killed run left behind.

    A folder whose owner is a live process on this host (a concurrent run of
    the same participant) is kept.
    """
    stale = sorted(output_dir.glob(f".sub-{subject}.*")) + sorted(output_dir.glob(f".old-sub-{subject}.*"))
    for folder in remove_stale_staging(stale):
        log.info("sub-%s: removed %s, left by an interrupted run", subject, folder.name)


def run_participant(subject: str, runs: list[RunFiles], ctx: ParticipantContext) -> dict:
    """Fit and write everything for one participant; returns a summary dict."""
    t0 = time.perf_counter()
    _remove_stale_staging(ctx.output_dir, subject)
    staging = make_staging_folder(ctx.output_dir, f".sub-{subject}.")
    summary = {"participant": subject, "tasks": {}}
    try:
        for task in sorted({r.task for r in runs}):
            task_runs = [r for r in runs if r.task == task]
            summary["tasks"][task] = _run_task(subject, task, task_runs, ctx, staging)
        final = ctx.output_dir / f"sub-{subject}"
        staged = staging / f"sub-{subject}"
        if final.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".old-sub-{subject}.", dir=ctx.output_dir))
            final.rename(trash / final.name)
            staged.rename(final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            staged.rename(final)
        saved = staging / "features" / f"sub-{subject}"
        if saved.exists():
            dst = ctx.output_dir / "features" / f"sub-{subject}"
            dst.parent.mkdir(parents=True, exist_ok=True)
            if dst.exists():
                shutil.rmtree(dst)
            saved.rename(dst)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    return summary


def _check_inputs(subject: str, ctx: ParticipantContext, trials: pd.DataFrame, preprocessed: list) -> None:
    """Every input file of a participant is present and readable, before anything is computed.

    git-annex content never fetched (with the ``datalad get`` that fetches it),
    broken links, unreadable or truncated NIfTI files: one error naming the file.
    """
    args = ctx.args
    for prun in preprocessed:
        check_nifti(prun.bold, "preprocessed BOLD")
        if prun.mask is not None:
            check_nifti(prun.mask, "brain mask")
        if args.confounds and prun.confounds is not None:
            check_present(prun.confounds, "confounds file")
    if args.mask is not None:
        check_nifti(args.mask, "--mask")
    if ctx.roi_dir is not None:
        for path in find_roi_masks(ctx.roi_dir, subject).values():
            check_nifti(path, "ROI mask")
    if any(s.needs_images for s in ctx.spaces):
        for path in dict.fromkeys(trials["stimulus_path"]):
            check_present(path, "stimulus image")
    surfaces, _ = find_surfaces(ctx.space, [Path(lay.root) for lay in ctx.derivative_layouts], subject)
    if surfaces is not None:
        for mesh in [*surfaces.pial.values(), *surfaces.white.values()]:
            if isinstance(mesh, (str, Path)):
                check_present(mesh, "surface mesh")


def _run_task(subject: str, task: str, runs: list[RunFiles], ctx: ParticipantContext, staging: Path) -> dict:
    args = ctx.args
    laps = Laps(f"sub-{subject} task-{task}")
    for run in runs:
        check_present(run.events, "events file")
    trials = build_trials(runs)
    if any(s.needs_images for s in ctx.spaces):
        trials = attach_stimulus_paths(trials, ctx.stimuli_dirs, {r.label: r.events for r in runs})
    else:
        trials["stimulus_path"] = None
    unique_images = list(dict.fromkeys(trials["image_id"]))
    try:
        _check_features(ctx.spaces, unique_images)
    except FeatureError as exc:
        raise InputDataError(str(exc)) from exc
    partitionings = resolve_partitionings(getattr(args, "variance_partitioning", None), ctx.spaces)
    preprocessed = ([] if args.responses == "betas" else
                    [find_preprocessed(ctx.derivative_layouts, r, ctx.space) for r in runs])
    _check_inputs(subject, ctx, trials, preprocessed)
    laps.lap("events and input checks")
    log.info("sub-%s task-%s: %d runs, %d trials, %d images", subject, task, len(runs), len(trials),
             len(unique_images))

    cache = WorkCache(ctx.work_dir)
    beta_files = []
    response_key = {
        "model": args.responses, "response_trs": list(args.response_trs), "confounds": args.confounds,
        "hrf": args.hrf_model, "high_pass": args.high_pass, "mask": file_identity(args.mask),
        "resample_mask": bool(args.resample_mask),
        "runs": [[file_identity(p.bold), file_identity(p.mask), file_identity(p.confounds),
                  file_identity(p.raw.events), p.raw.repetition_time, p.start_time] for p in preprocessed],
        "volume_choice": "nearest to onset + L*TR"}
    if args.responses == "betas":
        sessions = sorted({r.session for r in runs if r.session}) or None
        beta_files = find_beta_files(args.betas_dir, subject, sessions)
        for beta in beta_files:
            check_nifti(beta.path, "betas")
            check_present(beta.tsv, "betas stimulus table")
        response_key["betas"] = [[file_identity(b.path), file_identity(b.tsv)] for b in beta_files]
        responses = cache.get_or_compute("responses", response_key, lambda: beta_responses(
            beta_files, user_mask=_user_mask(args, beta_files[0].path if beta_files else None)))
        missing = sorted(set(responses.image_ids) - set(trials["image_id"]))
        if missing:
            raise InputDataError(f"{args.betas_dir}: stimulus {missing[0]!r} of the betas is in no events file "
                                 f"of sub-{subject} ({len(missing)} such)")
    elif args.responses == "lsa":
        responses = cache.get_or_compute("responses", response_key, lambda: lsa_responses(
            preprocessed, trials, hrf_model=args.hrf_model, high_pass=args.high_pass,
            confounds=args.confounds, user_mask=_user_mask(args, preprocessed[0].bold), device=ctx.device,
            n_threads=args.nprocs, mem_gb=args.mem_gb, progress=args.verbose > 0))
    else:
        responses = cache.get_or_compute("responses", response_key, lambda: tr_average_responses(
            preprocessed, trials, response_trs=args.response_trs, confounds=args.confounds,
            user_mask=_user_mask(args, preprocessed[0].bold), n_threads=args.nprocs, mem_gb=args.mem_gb,
            progress=args.verbose > 0))
    laps.lap("responses")
    paths_by_image = dict(zip(trials["image_id"], trials["stimulus_path"]))
    t_feat = time.perf_counter()
    features = featurize(ctx.spaces, responses.image_ids, [paths_by_image[i] for i in responses.image_ids],
                         cache_dir=ctx.work_dir / "features", device=ctx.device, progress=args.verbose > 0,
                         num_workers=args.nprocs or 2)
    t_feat = time.perf_counter() - t_feat
    laps.lap("features")
    n_images = len(responses.image_ids)
    train_mask = np.zeros(n_images, bool)
    train_mask[train_test_split_indices(n_images, args.test_fraction, args.seed)[0]] = True
    for space in ctx.spaces:
        _check_feature_values(space, features[space.name], responses.image_ids, train_mask)

    n = len(responses.image_ids)
    train_idx, test_idx = train_test_split_indices(n, args.test_fraction, args.seed)
    cv_groups = None
    if args.cv_scheme == "session":
        cv_groups = np.asarray(responses.image_sessions, dtype=object)[train_idx].astype(str)
        if len(set(cv_groups)) < 2:
            raise InputDataError(f"sub-{subject} task-{task}: --cv-scheme session needs training images from at "
                                 f"least 2 sessions (found {sorted(set(cv_groups))})")
    ents = {"sub": subject, "task": task, "space": ctx.space}
    common = {
        "Participant": subject, "Task": task, "Space": ctx.space,
        "Sources": [bids_uri(p.bold, ctx.links) for p in preprocessed] or [bids_uri(b.path, ctx.links)
                                                                          for b in beta_files],
        "Responses": responses.provenance,
        "Split": {"NImages": n, "NTrain": int(len(train_idx)), "NTest": int(len(test_idx)),
                  "TestFraction": args.test_fraction, "Seed": args.seed,
                  "SplitFile": derivative_path("", desc="split", suffix="stimuli", extension=".tsv",
                                               sub=subject, task=task).name},
        **ctx.provenance,
    }
    reference = bids_uri(preprocessed[0].bold if preprocessed else beta_files[0].path, ctx.links) \
        if (preprocessed or beta_files) else None
    if ctx.space == "T1w" and reference:
        common["SpatialReference"] = reference

    # the mask is a BIDS file the validator checks: only keys the spec defines or leaves free
    mask_meta = {"Description": "Voxels analysed: inside the brain masks of all runs (and --mask), "
                                "finite and not constant", "Sources": common["Sources"],
                 "Participant": subject, "Task": task, "Space": ctx.space, "NVoxels": responses.n_voxels,
                 "CommandLine": ctx.provenance.get("CommandLine")}
    if reference:  # the mask is validated: it names the grid it is on in every space, template spaces too
        mask_meta["SpatialReference"] = reference
    write_mask(staging, responses.mask_img, mask_meta, **ents)
    surfaces, surface_note = find_surfaces(ctx.space, [Path(lay.root) for lay in ctx.derivative_layouts], subject)
    log.info("sub-%s task-%s: %s", subject, task, surface_note)
    common["Surfaces"] = surface_note

    surface_queue = []

    def emit(values: np.ndarray, meta: dict, fill: float = 0.0, **entities) -> None:
        """One statistic over the mask voxels -> volume map now, surface maps queued for the end."""
        values = np.nan_to_num(np.asarray(values, dtype=np.float32), nan=fill)
        write_statmap(staging, responses.unmask(values, fill=fill), meta, **ents, **entities)
        if surfaces is not None:
            surface_queue.append((values, fill, meta, {**ents, **entities}))
    write_tsv(derivative_path(staging, sub=subject, task=task, desc="split", suffix="stimuli", extension=".tsv"),
              _split_table(responses, train_idx, test_idx))

    # noise ceiling of the test-set responses (averages of their presentations); optional: it needs repeats
    n_repeated = int((responses.n_presentations > 1).sum())
    nc = None
    if n_repeated >= 2:
        test_counts = responses.n_presentations[test_idx]
        trial_sessions = responses.trials["session"].to_numpy(object)
        ncsnr, nc = _in_voxel_blocks(noise_ceiling, responses.trial_data, responses.trial_image_index,
                                     n_average=test_counts, sessions=trial_sessions)
        nc_reliable = fdr_bh(_in_voxel_blocks(ceiling_pvalue, responses.trial_data, responses.trial_image_index,
                                              sessions=trial_sessions), args.fdr_alpha) < args.fdr_alpha
        nc_meta = {**common, "NAveragedTrials": float(1.0 / np.mean(1.0 / test_counts)),
                   "NImagesWithRepeats": n_repeated, "ZScoring": "trial responses z-scored per voxel within "
                                                                 "each session (NSD)",
                   "Method": "NSD: ncsnr = sqrt(max(0, 1 - noise_var)) / sqrt(noise_var); NC = ncsnr^2 / "
                             "(ncsnr^2 + mean over test images of 1/n_i), n_i the presentations averaged into "
                             "test image i (NAveragedTrials is the harmonic mean of n_i)"}
        emit(nc, nc_meta, desc="noise", stat="noiseceiling")
        emit(ncsnr, nc_meta, desc="noise", stat="ncsnr")
    else:
        log.warning("sub-%s task-%s: %d image(s) shown more than once; the noise ceiling needs at least 2, so "
                    "no noise-ceiling or normalised R² maps", subject, task, n_repeated)
    if n_repeated >= 3:
        reliability, n_rel = _in_voxel_blocks(split_half_reliability, responses.trial_data,
                                              responses.trial_image_index, seed=args.seed)
        emit(reliability, {**common, "NImages": n_rel, "Seed": args.seed,
                           "Method": "presentations of each repeated image split at random into two halves; Pearson "
                                     "r across images of the two half-averages (not Spearman-Brown corrected)"},
             desc="noise", stat="splithalf")
    elif n_repeated == 2:
        log.warning("sub-%s task-%s: only 2 repeated images; no split-half reliability map (needs 3)", subject, task)

    rois = {}
    if ctx.roi_dir is not None:
        rois = load_roi_vectors(find_roi_masks(ctx.roi_dir, subject), responses.mask_img)
        if not rois:
            log.warning("sub-%s: no ROI masks in %s; no ROI table", subject, ctx.roi_dir)
    roi_rows = []

    # nothing below reads the single trials: release them (n_trials x n_voxels float32)
    responses.trial_data = None
    Y = responses.data
    contrasts = default_contrasts([(s.name, s.label, s.group) for s in ctx.spaces]) if args.contrast_bootstrap else []
    if contrasts and args.contrast_p == "analytic" and len(test_idx) < 4:
        log.warning("sub-%s task-%s: %d test images; the contrast t needs at least 4, so no contrast maps",
                    subject, task, len(test_idx))
        contrasts = []
    accumulator = (ContrastAccumulator(Y[test_idx], contrasts, n_bootstrap=args.contrast_bootstrap,
                                       p_method=args.contrast_p, seed=args.seed, device=ctx.device)
                   if contrasts else None)
    if accumulator is not None and accumulator.p_floor > 0:
        needed = fdr_tests_needed_at_floor(accumulator.p_floor, responses.n_voxels, args.fdr_alpha)
        if needed > 1:
            log.warning("sub-%s task-%s: with %d bootstrap resamples the smallest contrast p is %.3g, so FDR at %.3g "
                        "over %d voxels declares contrast voxels only when at least %d of them reach it; use "
                        "--contrast-p analytic (Williams' t, continuous p) or at least %d resamples", subject, task,
                        args.contrast_bootstrap, accumulator.p_floor, args.fdr_alpha, responses.n_voxels,
                        int(np.ceil(needed)), int(np.ceil(2 * responses.n_voxels / args.fdr_alpha - 1)))
    if args.n_permutations:
        needed = fdr_tests_needed_at_floor(1.0 / (args.n_permutations + 1), responses.n_voxels, args.fdr_alpha)
        if needed > 1:
            log.warning("sub-%s task-%s: with %d permutations the smallest p is 1/%d, so FDR at %.3g over %d voxels "
                        "declares voxels only when at least %d of them reach it; use at least %d permutations for "
                        "single-voxel resolution, or analytic p (--n-permutations 0)", subject, task,
                        args.n_permutations, args.n_permutations + 1, args.fdr_alpha, responses.n_voxels,
                        int(np.ceil(needed)), int(np.ceil(responses.n_voxels / args.fdr_alpha)))
    roi_permutations = (make_permutations(len(test_idx), args.n_permutations, args.seed)
                        if rois and args.n_permutations else None)
    space_summaries = {}
    for k, space in enumerate(ctx.spaces, 1):
        laps.lap("maps and tables" if k > 1 else "split, noise ceiling, masks")
        log.info("sub-%s task-%s: feature space %d of %d: %s", subject, task, k, len(ctx.spaces), space.name)
        X = features[space.name]
        keep_predictions = (accumulator is not None and accumulator.needs(space.name)) or roi_permutations is not None
        t_fit = time.perf_counter()
        fit_key = {"responses": response_key, "features": hashlib.sha256(X.tobytes()).hexdigest(),
                   "split": [args.test_fraction, args.seed], "alphas": list(args.alphas), "folds": args.cv_folds,
                   "cv_score": args.cv_score, "precision": args.precision, "device": ctx.device,
                   "cv_scheme": args.cv_scheme, "standardize": args.standardize, "weights": args.save_weights,
                   "n_permutations": args.n_permutations, "fdr_alpha": args.fdr_alpha,
                   "predictions": keep_predictions}
        # under --mem-gb the fit's batches get what is left: resident memory (taken when the fit starts, with its
        # input rows already copied), its float64 copies of X and its outputs (test predictions, weights) come off
        fit_extra = (2 * X.nbytes, keep_predictions * 4 * len(test_idx) * Y.shape[1]
                     + args.save_weights * 4 * X.shape[1] * Y.shape[1])
        result = cache.get_or_compute("encoding", fit_key, lambda: fit_encoding_model(
            X[train_idx], Y[train_idx], X[test_idx], Y[test_idx], alphas=np.asarray(args.alphas),
            n_folds=args.cv_folds, groups=cv_groups, cv_score=args.cv_score, standardize=args.standardize,
            return_weights=args.save_weights, precision=args.precision, device=ctx.device,
            mem_gb=_fit_mem_gb(args.mem_gb, ctx.device, *fit_extra), seed=args.seed,
            n_permutations=args.n_permutations, fdr_alpha=args.fdr_alpha,
            return_predictions=keep_predictions, progress=args.verbose > 0))
        t_fit = time.perf_counter() - t_fit
        laps.lap(f"fit {space.name}")
        meta = {**common, "FeatureSpace": space.name, "FeatureLabel": space.label, "FeatureGroup": space.group,
                "FeatureDescription": space.description, "FeatureDimension": int(X.shape[1]),
                "FeatureProvenance": space.provenance, "FDRLevel": args.fdr_alpha, **result.metadata()}
        for stat, attr in STAT_MAPS.items():
            emit(getattr(result, attr), meta, fill=1.0 if stat in ("p", "q") else 0.0, desc=space.label, stat=stat)
        if nc is not None:
            norm = noise_normalized_score(result.r, nc, nc_reliable)
            n_above = int(np.sum(norm > 1))
            if n_above:
                log.warning("sub-%s task-%s %s: %d voxel(s) score above their noise ceiling (rsquarednorm > 1, "
                            "max %.2f); kept as they are (noise in r or in the ceiling)", subject, task,
                            space.name, n_above, float(np.nanmax(norm)))
            emit(norm, {**meta, **NORMALIZED_RULE, "NVoxelsCeilingReliable": int(nc_reliable.sum()),
                        "NVoxelsAboveCeiling": n_above}, fill=np.nan, desc=space.label, stat="rsquarednorm")
        roi_p = ({} if roi_permutations is None else
                 roi_permutation_p(Y[test_idx], result.predictions, rois, roi_permutations))
        for row in roi_summary(result.r, result.r2, result.q, rois, args.fdr_alpha):
            if roi_permutations is not None:
                row["p_mean_r"] = roi_p[row["roi"]]
            roi_rows.append({"feature_space": space.label, "feature_group": space.group, **row})
        if accumulator is not None and accumulator.needs(space.name):
            accumulator.add(space.name, result.predictions)
        if args.save_weights:
            weights_path = derivative_path(staging, **ents, desc=space.label, suffix="weights", extension=".npz")
            with atomic_path(weights_path) as tmp:
                np.savez(tmp, weights=result.weights, feature_mean=result.feature_mean,
                         feature_scale=result.feature_scale, intercept=result.intercept, alpha=result.alpha,
                         voxel_indices=np.flatnonzero(np.asarray(responses.mask_img.dataobj).ravel() > 0))
            write_json(sidecar_path(weights_path), {
                **meta, "Arrays": {
                    "weights": "(n_features, n_voxels) on standardised features",
                    "feature_mean, feature_scale": "training statistics: x_std = (x - mean) / scale",
                    "intercept": "(n_voxels,) training mean of the responses",
                    "alpha": "(n_voxels,) chosen ridge penalty",
                    "voxel_indices": "(n_voxels,) flat C-order indices of the voxels in the brain mask grid"},
                "Prediction": "y = ((x - feature_mean) / feature_scale) @ weights + intercept"})
        n_sig = int(np.sum(result.q < args.fdr_alpha))
        space_summaries[space.name] = {"n_significant": n_sig, "max_r": float(np.nanmax(result.r)),
                                       "seconds": round(t_fit, 3)}
        log.info("sub-%s task-%s %s: %d/%d voxels q<%.3g, max r %.3f (%.2f s)", subject, task, space.name,
                 n_sig, responses.n_voxels, args.fdr_alpha, np.nanmax(result.r), t_fit)
        if args.save_features:
            save_feature_space(staging / "features" / f"sub-{subject}" / f"task-{task}" / space.label, X, responses.image_ids,
                               {"group": space.group, "description": space.description, "name": space.name,
                                "provenance": space.provenance})
    for contrast in contrasts:
        res = accumulator.result(contrast.name, args.fdr_alpha)
        meta = {**common, "Contrast": {
            "Name": contrast.name, "A": list(contrast.a), "B": list(contrast.b),
            "Statistic": "mean test-set Pearson r of A minus mean test-set Pearson r of B",
            "PValueMethod": res.method, "Test": P_METHODS[res.method], "NTest": len(test_idx),
            **({"DegreesOfFreedom": res.df} if res.df is not None else {}),
            "NBootstrap": res.n_bootstrap, **({"CILevel": res.ci_level} if res.n_bootstrap else {}),
            "Seed": args.seed}, "FDRLevel": args.fdr_alpha}
        emit(res.difference, meta, desc=contrast.name, stat="rdiff")
        emit(res.p, {**meta, "Description": f"Two-sided p of rdiff != 0 ({res.method})"}, fill=1.0,
             desc=contrast.name, stat="p")
        if res.ci_low is not None:
            for stat, values in (("rdifflow", res.ci_low), ("rdiffhigh", res.ci_high)):
                emit(values, meta, desc=contrast.name, stat=stat)
        emit(res.q, {**meta, "Description": "Benjamini-Hochberg FDR q of the contrast p, over the mask voxels"},
             fill=1.0, desc=contrast.name, stat="q")
        log.info("sub-%s task-%s contrast %s: %d voxels q<%.3g (A>B %d, B>A %d)", subject, task, contrast.name,
                 int(np.sum(res.q < args.fdr_alpha)), args.fdr_alpha,
                 int(np.sum((res.q < args.fdr_alpha) & (res.difference > 0))),
                 int(np.sum((res.q < args.fdr_alpha) & (res.difference < 0))))
    partition_summary = run_partitionings(
        partitionings, features, Y, train_idx, test_idx, groups=cv_groups, args=args, device=ctx.device, emit=emit,
        common=common, rois=rois, staging=staging, ents=ents) if partitionings else {}
    laps.lap("variance partitioning and maps" if partitionings else "maps and tables")
    if surfaces is not None:
        t_surf = time.perf_counter()
        written = project_statmaps(staging, surface_queue, surfaces, mask_img=responses.mask_img,
                                   unmask=lambda values, fill: responses.unmask(values, fill=fill))
        log.info("sub-%s task-%s: %d GIFTI maps on %s (%.1f s)", subject, task, len(written), surfaces.space,
                 time.perf_counter() - t_surf)
    if roi_rows:
        table_path = derivative_path(staging, sub=subject, task=task, desc="roi", suffix="scores", extension=".tsv")
        write_tsv(table_path, pd.DataFrame(roi_rows))
        write_json(sidecar_path(table_path), {
            **common, "FDRLevel": args.fdr_alpha, "ROIDirectory": str(ctx.roi_dir),
            "Columns": {"feature_space": "feature space label (desc- of the maps)",
                        "feature_group": "2D, 3D, semantic or other",
                        "roi": "ROI; 'LH-'/'RH-' prefix for one hemisphere, none for both pooled",
                        "n_voxels": "analysed voxels inside the ROI",
                        "mean_r": "mean test-set Pearson r", "mean_rsquared": "mean test-set R-squared",
                        "fraction_significant": "fraction of ROI voxels with q below FDRLevel",
                        **({"p_mean_r": "permutation p of the ROI's mean r (test images permuted, the same "
                                        "permutation for every voxel)"} if roi_permutations is not None else {})},
            **({"NPermutations": args.n_permutations} if roi_permutations is not None else {})})
    laps.lap("surfaces and ROI table")
    return {"n_images": n, "n_voxels": responses.n_voxels, "feature_seconds": round(t_feat, 2),
            "feature_spaces": space_summaries, **({"variance_partitioning": partition_summary} if partitionings else {})}
