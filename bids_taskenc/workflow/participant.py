"""One participant, end to end: gather and check the inputs -> responses -> features -> fit each space ->
contrasts, ROIs, partitionings -> write.

All checks that can fail on bad input (events, stimuli, feature rows, BOLD and
mask grids) run before anything is written. Outputs are written into a staging
folder inside the output folder and moved into place when the participant is
complete, so a failed participant leaves nothing half-written.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..bids.rois import find_roi_masks, load_roi_vectors
from ..core.atomic import replace_folder
from ..outputs.derivatives import write_dataset_description
from ..outputs.locks import output_lock, participant_lock
from ..outputs.staging import make_staging_folder, remove_stale_staging
from .cache import WorkCache
from .comparisons import plan_contrasts, plan_permutations, write_contrasts
from .data import compute_features, compute_responses, split_images
from .dataset import Dataset, check_output_owner, open_dataset
from .fit import fit_and_write_space
from .inputs import TaskInputs, gather_inputs
from .memory import check_memory
from .noise import noise_ceiling_maps
from .partitioning import run_partitionings
from .rerun import check_rerun, check_same_data, merge_previous, merge_saved_features, shared_settings
from .resources import container_info
from .settings import ParticipantSettings
from .task import TaskRun
from .timing import Laps
from .writer import TaskWriter

log = logging.getLogger(__name__)


@dataclass
class ParticipantOutcome:
    """What one participant's run did: per task its image and voxel counts and per space its summary."""

    participant: str
    output_dir: Path  # the participant's folder, sub-<label>
    tasks: dict = field(default_factory=dict)  # task -> {"n_images", "n_voxels", "feature_seconds", ...}
    seconds: float = 0.0

    def n_significant(self, task: str | None = None) -> dict[str, int]:
        """Voxels with q below the FDR level, per feature space (of ``task``, default the only/first one)."""
        summary = self.tasks[task or next(iter(self.tasks))]
        return {name: s["n_significant"] for name, s in summary["feature_spaces"].items()}


def run_participant(
    bids_dir: str | Path,
    output_dir: str | Path,
    participant: str,
    settings: ParticipantSettings | None = None,
    *,
    dataset: Dataset | None = None,
) -> ParticipantOutcome:
    """Fit and write everything for one participant, every task; the outputs go to ``output_dir/sub-<label>``.

    ``settings`` default to the command line's defaults. ``dataset`` (from :func:`open_dataset`) is the indexed
    dataset a run of several participants shares; without it the dataset is opened for this participant. Errors
    are raised (:mod:`bids_taskenc.errors` for bad inputs or settings); a participant that fails leaves no outputs.
    """
    settings = settings or ParticipantSettings()
    subject = participant[4:] if participant.startswith("sub-") else participant
    if dataset is None:
        dataset = open_dataset(bids_dir, output_dir, settings, participants=[subject])
    t0 = time.perf_counter()
    runs = dataset.runs_of(subject)
    outcome = ParticipantOutcome(participant=subject, output_dir=dataset.output_dir / f"sub-{subject}")
    with participant_lock(dataset.output_dir, subject):
        check_participant_outputs(dataset, settings, subject)
        _remove_stale_staging(dataset.output_dir, subject)
        staging = make_staging_folder(dataset.output_dir, f".sub-{subject}.")
        try:
            for task in sorted({r.task for r in runs}):
                task_runs = [r for r in runs if r.task == task]
                outcome.tasks[task] = run_task(dataset, settings, subject, task, task_runs, staging)
            computed = {task: {s.label for s in dataset.spaces} for task in outcome.tasks}
            with output_lock(dataset.output_dir, exclusive=False, who=f"sub-{subject}"):
                _move_into_place(staging, dataset.output_dir, subject, computed, settings.outputs.replace_outputs)
                write_dataset_description(
                    dataset.output_dir, source_dir=dataset.bids_dir, container=container_info(), links=dataset.links
                )
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    outcome.seconds = round(time.perf_counter() - t0, 2)
    return outcome


def check_participant_outputs(ds: Dataset, settings: ParticipantSettings, subject: str) -> None:
    """Refuse before any work: a ``sub-<label>/`` this app did not write, or earlier maps with other shared
    settings that a rerun would keep beside its own (unless ``replace_outputs``)."""
    check_output_owner(ds.output_dir, [subject])
    if settings.outputs.replace_outputs:
        return
    tasks = sorted({r.task for r in ds.runs_of(subject)})
    new = shared_settings(settings, ds.space)
    check_rerun(ds.output_dir / f"sub-{subject}", subject, tasks, new, {s.label for s in ds.spaces})


def _remove_stale_staging(output_dir: Path, subject: str) -> None:
    """Delete staging folders of ``subject`` that a killed run left behind.

    A folder whose owner is a live process on this host (a concurrent run of
    the same participant) is kept. A participant folder that a run killed between the two renames of its swap
    left only in its ``.old-sub-<label>.*`` folder is put back first.
    """
    final = output_dir / f"sub-{subject}"
    for trash in sorted(output_dir.glob(f".old-sub-{subject}.*")):
        if not final.exists() and (trash / f"sub-{subject}").is_dir():
            (trash / f"sub-{subject}").rename(final)
            log.warning("sub-%s: restored its outputs from %s, left by a run killed while swapping", subject, trash)
    stale = sorted(output_dir.glob(f".sub-{subject}.*")) + sorted(output_dir.glob(f".old-sub-{subject}.*"))
    stale = [p for p in stale if p.is_dir()]
    for folder in remove_stale_staging(stale):
        log.info("sub-%s: removed %s, left by an interrupted run", subject, folder.name)


def _move_into_place(staging: Path, output_dir: Path, subject: str, computed: dict, replace: bool) -> None:
    """The complete participant takes the place of its previous outputs (and its saved features theirs).

    Unless ``replace``, the staged folder first receives what the earlier folder holds and this run keeps
    (:func:`~.rerun.merge_previous`), so the swap adds and replaces only what this run computed.
    """
    final = output_dir / f"sub-{subject}"
    new = staging / f"sub-{subject}"
    check_output_owner(output_dir, [subject])
    if final.is_dir() and not replace:
        check_same_data(final, new, computed)
        dropped = merge_previous(final, new, computed)
        if dropped:
            log.warning(
                "sub-%s: %d earlier outputs combining spaces this run replaced were dropped (rerun with all their "
                "spaces to compute them again): %s",
                subject,
                len(dropped),
                ", ".join(dropped[:5]) + (", ..." if len(dropped) > 5 else ""),
            )
    saved = staging / "features" / f"sub-{subject}"
    saved_final = output_dir / "features" / f"sub-{subject}"
    if saved.exists() and saved_final.is_dir() and not replace:
        merge_saved_features(saved_final, saved)
    # the old folder goes to a .old-sub-<label>.* folder, which _remove_stale_staging clears if we are killed
    trash = Path(tempfile.mkdtemp(prefix=f".old-sub-{subject}.", dir=output_dir))
    replace_folder(new, final, trash / f"sub-{subject}")
    shutil.rmtree(trash, ignore_errors=True)
    if saved.exists():
        (output_dir / "features").mkdir(parents=True, exist_ok=True)
        replace_folder(saved, saved_final)


def _load_rois(ds: Dataset, subject: str, responses) -> dict:
    """ROI masks as boolean vectors over the analysed voxels ({} without an ROI folder)."""
    if ds.roi_dir is None:
        return {}
    rois = load_roi_vectors(find_roi_masks(ds.roi_dir, subject), responses.mask_img)
    if not rois:
        log.warning("sub-%s: no ROI masks in %s; no ROI table", subject, ds.roi_dir)
    return rois


def _prepare(ds: Dataset, settings: ParticipantSettings, inputs: TaskInputs, staging: Path, laps: Laps):
    """Responses, features and the split of one task, the writer started; the state the fits share."""
    cache = WorkCache(ds.work_dir)
    responses, response_key = compute_responses(ds, inputs, settings, cache)
    laps.lap("responses")
    features, feature_seconds = compute_features(ds, inputs, responses, settings)
    laps.lap("features")
    split = split_images(inputs, responses, features, ds.spaces, settings)
    writer = TaskWriter.start(staging, ds, inputs, responses, split, settings)
    run = TaskRun(
        ds=ds,
        settings=settings,
        inputs=inputs,
        responses=responses,
        features=features,
        split=split,
        writer=writer,
        cache=cache,
        response_key=response_key,
        laps=laps,
    )
    return run, feature_seconds


def run_task(ds: Dataset, settings: ParticipantSettings, subject: str, task: str, runs: list, staging: Path) -> dict:
    """One task of one participant, written into ``staging``; its summary."""
    laps = Laps(f"sub-{subject} task-{task}")
    inputs = gather_inputs(ds, subject, task, runs, settings)
    check_memory(inputs, settings, ds.spaces, ds.device)
    laps.lap("events and input checks")
    log.info(
        "sub-%s task-%s: %d runs, %d trials, %d images",
        subject,
        task,
        len(runs),
        len(inputs.trials),
        len(inputs.image_ids),
    )
    run, feature_seconds = _prepare(ds, settings, inputs, staging, laps)
    ceiling = noise_ceiling_maps(
        run.writer, run.responses, run.split, fdr_alpha=settings.fit.fdr_alpha, seed=settings.fit.seed
    )
    run.rois = _load_rois(ds, subject, run.responses)
    run.responses.trial_data = None  # nothing below reads the single trials: release them (n_trials x n_voxels)
    contrasts, accumulator = plan_contrasts(run)
    run.roi_permutations = plan_permutations(run)
    spaces = {}
    for k, space in enumerate(ds.spaces, 1):
        laps.lap("maps and tables" if k > 1 else "split, noise ceiling, masks")
        log.info("sub-%s task-%s: feature space %d of %d: %s", subject, task, k, len(ds.spaces), space.name)
        spaces[space.name] = fit_and_write_space(run, space, ceiling, accumulator)
    write_contrasts(run, contrasts, accumulator)
    partitions = run_partitionings(run) if inputs.partitionings else {}
    laps.lap("variance partitioning and maps" if inputs.partitionings else "maps and tables")
    run.writer.finish(
        run.roi_rows,
        fdr_alpha=settings.fit.fdr_alpha,
        roi_dir=ds.roi_dir,
        n_permutations=settings.fit.n_permutations if run.roi_permutations is not None else None,
    )
    laps.lap("surfaces and ROI table")
    return {
        "n_images": len(run.responses.image_ids),
        "n_voxels": run.responses.n_voxels,
        "feature_seconds": round(feature_seconds, 2),
        "feature_spaces": spaces,
        **({"variance_partitioning": partitions} if inputs.partitionings else {}),
    }
