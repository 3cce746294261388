"""The dataset side of a participant run, opened once for every participant: runs, derivatives, feature spaces.

:func:`open_dataset` indexes the BIDS folder and the preprocessed derivatives, resolves the feature spaces and
checks every setting that can be checked before a participant starts (exit 64 / 66 on a bad one); only then does
it create the work and output folders. The :class:`Dataset` it returns is what every participant shares.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..__about__ import __version__
from ..core.versions import software_versions
from ..errors import InputMissingError, UsageError
from ..outputs.ownership import description_owner, participant_folder_is_ours
from .faults import describe_error
from .folders import check_write_folder, read_folders
from .presets import preset_record
from .resources import apply_resources, resolve_device
from .settings import ParticipantSettings

log = logging.getLogger(__name__)


@dataclass
class Dataset:
    """What a participant run needs besides its own settings: found once per run, shared by its participants."""

    bids_dir: Path
    output_dir: Path
    work_dir: Path
    runs: list  # RunFiles of every selected participant
    derivative_layouts: list
    space: str
    spaces: list  # FeatureSpace
    stimuli_dirs: list[Path]
    roi_dir: Path | None
    device: str
    provenance: dict = field(default_factory=dict)  # versions, command line, config, device, resources
    links: dict = field(default_factory=dict)  # dataset name -> folder, for bids: URIs in sidecars
    selection: object = None  # bids.dataset.Selection: what was asked for (the filters narrow the derivatives too)

    @property
    def participants(self) -> list[str]:
        return sorted({r.subject for r in self.runs})

    def runs_of(self, participant: str) -> list:
        return [r for r in self.runs if r.subject == participant]


def check_output_dir(bids_dir: Path, output_dir: Path, reads: Sequence[tuple[str, Path]] = ()) -> Path:
    """The output folder, resolved: not a file, and not overlapping the input (:mod:`.folders`).

    Inside ``bids_dir`` outputs go under ``bids_dir/derivatives``; ``reads`` are the other folders the run reads
    (``(what, folder)``, :func:`.folders.read_folders`), which the output must not be, contain or lie inside.
    """
    output_dir = Path(output_dir).resolve()
    if output_dir.exists() and not output_dir.is_dir():
        raise UsageError(f"{output_dir}: output_dir exists and is not a folder")
    return check_write_folder("output_dir", output_dir, bids_dir, list(reads))


def check_output_owner(output_dir: Path, participants: list[str]) -> None:
    """Refuse an output folder whose description, or a participant folder of ``participants``, is not ours.

    Finishing a participant replaces its ``sub-<label>/`` and the run writes ``dataset_description.json``: in a
    folder another pipeline wrote (fMRIPrep's, a raw dataset) that would destroy its data.
    """
    owner = description_owner(output_dir)
    if owner is not None:
        raise UsageError(
            f"{Path(output_dir) / 'dataset_description.json'}: output_dir holds another dataset ({owner}); "
            "bids_taskenc would overwrite it and replace its sub-<label>/ folders: choose a new output folder"
        )
    for participant in participants:
        folder = Path(output_dir) / f"sub-{participant}"
        if not participant_folder_is_ours(folder):
            raise UsageError(
                f"{folder}: a participant folder that bids_taskenc did not write (no sidecar of bids_taskenc in it); "
                "finishing the participant would replace it: move it away or choose another output folder"
            )


def _check_earlier_outputs(output_dir: Path, settings: ParticipantSettings, runs: list, space: str, spaces) -> None:
    """Before any work, for every selected participant: its folder is ours, and a rerun that keeps earlier maps
    shares their settings (:mod:`.rerun`; the participant's run checks again when it starts)."""
    from .rerun import check_rerun, shared_settings

    subjects = sorted({r.subject for r in runs})
    check_output_owner(output_dir, subjects)
    if settings.outputs.replace_outputs:
        return
    new = shared_settings(settings, space)
    for subject in subjects:
        tasks = sorted({r.task for r in runs if r.subject == subject})
        check_rerun(output_dir / f"sub-{subject}", subject, tasks, new, {s.label for s in spaces})


def resolve_roi_dir(roi_dir: Path | None, bids_dir: Path) -> Path | None:
    """``roi_dir`` (``--roi-dir``), else ``<bids_dir>/derivatives/spm`` when present, else None (no ROIs).

    The participant and the group level find their ROI masks here.

    Raises
    ------
    InputMissingError
        ``roi_dir`` given and not a folder.
    """
    if roi_dir is None and (Path(bids_dir) / "derivatives" / "spm").is_dir():
        roi_dir = Path(bids_dir) / "derivatives" / "spm"
    if roi_dir is not None and not Path(roi_dir).is_dir():
        raise InputMissingError(f"{roi_dir}: --roi-dir does not exist")
    return None if roi_dir is None else Path(roi_dir)


def _derivatives(bids_dir: Path, settings: ParticipantSettings, runs: list) -> tuple[list, str]:
    """The preprocessed derivatives' layouts and the space to analyse."""
    from ..bids.preprocessed import choose_space, open_derivatives

    inputs = settings.inputs
    if settings.responses.reads_betas:
        # precomputed betas carry their own grid; BOLD5000's are in T1w space
        return [], inputs.space or "T1w"
    deriv_dirs = list(inputs.derivatives) or [bids_dir / "derivatives" / "fmriprep"]
    if not inputs.derivatives and not deriv_dirs[0].is_dir():
        raise InputMissingError(f"{deriv_dirs[0]}: no preprocessed data; give --derivatives DIR (fMRIPrep outputs)")
    layouts = open_derivatives(deriv_dirs)
    return layouts, choose_space(layouts, runs, inputs.space)


def _feature_spaces(bids_dir: Path, settings: ParticipantSettings) -> tuple[list, list[Path]]:
    """The feature spaces (every one found and loadable) and the stimulus folders their images come from."""
    from ..bids.files import check_present
    from ..features.registry import resolve_feature_spaces
    from .partitioning import resolve_partitionings

    fs = settings.features
    if fs.features_dir is not None:
        for path in sorted(fs.features_dir.glob("*/*")):
            if path.is_symlink() or path.is_file():
                check_present(path, "user feature file")
    # a FeatureError keeps its own exit code (bids_taskenc.errors.EXIT_CODES): 66 for a missing file, 64 for an
    # unknown name or two spaces of one label, 1 for a file whose content is wrong
    spaces = resolve_feature_spaces(
        list(fs.spaces) or None, features_dir=fs.features_dir, weights_dir=fs.taskonomy_weights, offline=fs.offline
    )
    resolve_partitionings(settings.comparisons.partitionings, spaces)  # bad sets: exit 64 before any work
    stimuli_dirs = list(settings.inputs.stimuli_dirs) or [bids_dir / "stimuli"]
    if any(s.needs_images for s in spaces):
        for d in stimuli_dirs:
            if not d.is_dir():
                raise InputMissingError(
                    f"{d}: stimuli folder does not exist (give --stimuli-dir; BOLD5000's "
                    "images come as Scene_Stimuli/Presented_Stimuli)"
                )
    return spaces, stimuli_dirs


def _make_folders(work_dir: Path, output_dir: Path) -> None:
    if work_dir.exists() and not work_dir.is_dir():
        raise UsageError(f"{work_dir}: --work-dir exists and is not a folder")
    try:
        work_dir.mkdir(parents=True, exist_ok=True)
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create the work or output folder: {describe_error(exc)}") from exc
    for folder, flag in ((work_dir, "--work-dir"), (work_dir / "cache", "--work-dir"), (output_dir, "output_dir")):
        _check_writable(folder, flag)


def _check_writable(folder: Path, flag: str) -> None:
    """A file can be created (and removed) in ``folder`` when it exists: a read-only work folder (a read-only
    mount, another user's scratch) is refused now, not after the responses were computed for nothing. A real
    write, not ``os.access``: root passes every permission check but not a read-only file system."""
    import os
    import tempfile

    if not folder.is_dir():
        return
    try:
        fd, probe = tempfile.mkstemp(prefix=".bids_taskenc-write-test-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(
            f"{folder}: {flag} is not writable ({exc.strerror or exc}); the run keeps its caches and outputs "
            "there: give a writable folder"
        ) from exc


def _provenance(settings: ParticipantSettings, device: str, command_line: str | None, config: dict | None) -> dict:
    """The run's record in every sidecar: versions, how it was called, its settings, device and resources."""
    return {
        "SoftwareVersions": software_versions(),
        "CommandLine": command_line or f"bids_taskenc {__version__}: bids_taskenc.workflow.run_participant",
        "Config": settings.to_dict() if config is None else config,
        **preset_record(settings),
        "Device": device,
        "Resources": apply_resources(settings.resources),
    }


def _check_database_dir(bids_dir: Path, settings: ParticipantSettings) -> None:
    """``--bids-database-dir`` is written when the dataset is indexed, before the other inputs are known: it is
    checked against the folders the settings name (and the default fMRIPrep folder), as the work folder is."""
    inputs = settings.inputs
    if inputs.bids_database_dir is None:
        return
    given = read_folders(
        bids_dir,
        derivatives=list(inputs.derivatives) or [bids_dir / "derivatives" / "fmriprep"],
        derivatives_given=bool(inputs.derivatives),
        roi_dir=inputs.roi_dir,
        features_dir=settings.features.features_dir,
        stimuli_dirs=inputs.stimuli_dirs,
        betas_dir=settings.responses.betas_dir,
        mask=settings.responses.mask,
    )
    check_write_folder("--bids-database-dir", inputs.bids_database_dir, bids_dir, given)


def open_dataset(
    bids_dir: str | Path,
    output_dir: str | Path,
    settings: ParticipantSettings,
    *,
    participants: list[str] | None = None,
    command_line: str | None = None,
    config: dict | None = None,
    laps=None,
) -> Dataset:
    """Index the inputs and check the settings for a run of ``participants`` (None: all); create the folders.

    ``command_line`` and ``config`` are the run's record in the sidecars (``CommandLine``, ``Config``); without
    them a sidecar records the Python call and ``settings.to_dict()``. ``laps`` (a :class:`~.timing.Laps`) times
    the indexing and the rest apart.
    """
    from ..bids.dataset import Selection, load_bids_filters, open_layout, select_runs
    from ..outputs.derivatives import dataset_links, read_dataset_links

    inputs = settings.inputs
    bids_dir = Path(bids_dir).resolve()
    _check_database_dir(bids_dir, settings)
    layout = open_layout(bids_dir, validate=not inputs.skip_bids_validation, database_dir=inputs.bids_database_dir)
    output_dir = check_output_dir(bids_dir, Path(output_dir))
    selection = Selection(
        participants=list(participants) if participants else None,
        sessions=list(inputs.sessions) or None,
        tasks=list(inputs.tasks) or None,
        filters=load_bids_filters(inputs.bids_filter_file),
        filter_file=inputs.bids_filter_file,
    )
    runs = select_runs(layout, selection)
    if laps is not None:
        laps.lap("index")
    deriv_layouts, space = _derivatives(bids_dir, settings, runs)
    spaces, stimuli_dirs = _feature_spaces(bids_dir, settings)
    roi_dir = resolve_roi_dir(inputs.roi_dir, bids_dir)
    device = resolve_device(settings.resources.device)
    reads = read_folders(
        bids_dir,
        derivatives=[Path(lay.root) for lay in deriv_layouts],
        derivatives_given=bool(inputs.derivatives),
        roi_dir=roi_dir,
        roi_dir_given=inputs.roi_dir is not None,
        features_dir=settings.features.features_dir,
        stimuli_dirs=stimuli_dirs,
        betas_dir=settings.responses.betas_dir if settings.responses.reads_betas else None,
        mask=settings.responses.mask,
    )
    output_dir = check_output_dir(bids_dir, output_dir, reads)
    # the work folder must not share the published output either (its cache would land in the derivatives,
    # or inside a participant folder that is swapped whole)
    work_dir = check_write_folder(
        "--work-dir", settings.outputs.work_dir, bids_dir, [*reads, ("output folder", output_dir)]
    )
    _check_earlier_outputs(output_dir, settings, runs, space, spaces)
    _make_folders(work_dir, output_dir)
    betas_dir = settings.responses.betas_dir
    betas = [betas_dir] if settings.responses.reads_betas and betas_dir is not None else []
    links = dataset_links(
        bids_dir, [Path(lay.root) for lay in deriv_layouts] + betas, existing=read_dataset_links(output_dir)
    )
    return Dataset(
        bids_dir=bids_dir,
        output_dir=output_dir,
        work_dir=work_dir,
        runs=runs,
        derivative_layouts=deriv_layouts,
        space=space,
        spaces=spaces,
        stimuli_dirs=stimuli_dirs,
        roi_dir=roi_dir,
        device=device,
        provenance=_provenance(settings, device, command_line, config),
        links=links,
        selection=selection,
    )


def command_line(argv: list[str]) -> str:
    """The ``CommandLine`` of a sidecar for a run started as ``bids_taskenc ARGV``."""
    return shlex.join(["bids_taskenc", *argv])
