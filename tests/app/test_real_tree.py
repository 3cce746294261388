"""The app on the real ds001499 file tree (BOLD5000, CSI1): real events, sidecars and confounds, synthetic images.

The text files are the release's (``tests/data/ds001499_sub-CSI1``, CC0); the images are written by
:func:`bids_taskenc.testing.real_tree.build_real_tree` at the release's annexed paths, with a planted truth:
the user feature space ``drive`` drives both PPA masks, ``random`` drives nothing. The whole participant
(142 runs) is run by ``benchmarks/real_tree.py``; here sessions 03 and 04 (19 image runs, the localizer run
of session 04) and the anatomy-only session 16, for time.
"""

from __future__ import annotations

import logging
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from bids_taskenc.bids.dataset import RunFiles, Selection, open_layout, select_runs, stimulus_tasks
from bids_taskenc.bids.trials import build_trials
from bids_taskenc.outputs.logs import run_logs
from bids_taskenc.outputs.naming import derivative_path, sidecar_path
from bids_taskenc.outputs.reading import read_sidecar, statmap_path
from bids_taskenc.testing.real_tree import (
    DRIVE_SPACE,
    DRIVEN_ROI,
    NULL_SPACE,
    build_real_tree,
    real_events_files,
    unpack_text_tree,
)

from .conftest import run_app

DATA = Path(__file__).resolve().parents[1] / "data" / "ds001499_sub-CSI1"
ARCHIVE = DATA / "ds001499-CSI1-text.tar.xz"
TASK = "5000scenes"
SESSIONS = ["03", "04", "16"]
#: Sessions 03 (10 runs) and 04 (9 runs): the real counts, from their events files.
REAL_COUNTS = {"runs": 19, "trials": 703, "images": 693, "localizer_runs": 1}
LOCALIZER_LINE = "task-localizer skipped: its events name no stimulus file"


def _events_runs(bids_dir: Path) -> list[RunFiles]:
    runs = []
    for path in real_events_files(bids_dir):
        ents = dict(part.split("-", 1) for part in path.name.split("_")[:-1])
        runs.append(
            RunFiles(
                subject=ents["sub"],
                session=ents["ses"],
                task=ents["task"],
                run=int(ents["run"]),
                bold=path.with_name(path.name.replace("_events.tsv", "_bold.nii.gz")),
                events=path,
                repetition_time=2.0,
            )
        )
    return runs


def test_every_real_events_file_of_csi1_is_read(tmp_path, caplog):
    """All 142 image runs: 5,254 trials of 4,916 images (112 shown four times, one three times)."""
    bids_dir = tmp_path / "ds001499"
    unpack_text_tree(ARCHIVE, bids_dir)
    runs = _events_runs(bids_dir)
    trials = build_trials(runs)
    assert len(runs) == 142
    assert len(trials) == 5254 and trials["image_id"].nunique() == 4916
    assert trials.groupby("image_id").size().value_counts().to_dict() == {1: 4803, 4: 112, 3: 1}
    assert {Path(n).suffix for n in trials["image_id"]} == {".jpg", ".JPEG", ".jpeg"}
    assert trials.groupby("run_key").size().value_counts().to_dict() == {37: 142}
    # ImgType's rep_ is not "a later showing": in 77 of the 113 repeated images the first showing carries it
    events = [pd.read_csv(r.events, sep="\t").sort_values("onset", kind="stable") for r in runs]  # as build_trials
    img_type = pd.concat([e["ImgType"] for e in events], ignore_index=True)
    first = trials.assign(img_type=img_type)[lambda t: t["repeat_index"] == 0]
    repeated = trials.groupby("image_id").size()[lambda n: n > 1].index
    assert first[first["image_id"].isin(repeated)]["img_type"].str.startswith("rep_").sum() == 77
    # the localizer (8 runs, columns cond/image/1back) is left out, with a line saying why
    assert len(real_events_files(bids_dir, task="localizer")) == 8
    with caplog.at_level(logging.INFO, logger="bids_taskenc.bids.dataset"):
        layout = open_layout(bids_dir)  # the real names pass the BIDS file-name check (.bidsignore: tmp_dcm2bids/)
        assert stimulus_tasks(layout) == [TASK]
    lines = [r.getMessage() for r in caplog.records if LOCALIZER_LINE in r.getMessage()]
    assert len(lines) == 1 and "cond, image, 1back" in lines[0]


@pytest.fixture(scope="module")
def real_tree(tmp_path_factory):
    """Sessions 03, 04 and 16 of CSI1, and CSI1copy (the same text tree, its own voxels and noise)."""
    return build_real_tree(tmp_path_factory.mktemp("real"), ARCHIVE, sessions=SESSIONS, copies=["CSI1copy"], seed=0)


def test_tree_keeps_the_release_layout(real_tree):
    """What the release lacks stays lacking; the images are at annexed paths; the counts are the events'."""
    assert not (real_tree.fmriprep_dir / "dataset_description.json").exists()
    assert not (real_tree.roi_dir / "dataset_description.json").exists()
    assert (real_tree.bids_dir / "sub-CSI1" / "ses-16" / "tmp_dcm2bids").is_dir()
    assert not (real_tree.bids_dir / "sub-CSI1" / "ses-16" / "func").exists()
    assert real_tree.annexed_checked == 3 * (19 + 1) + 10 + 2  # BOLD, preproc, mask a run; 10 ROIs; 2 T1w
    for participant in real_tree.participants:
        assert real_tree.counts[participant] == REAL_COUNTS
    layout = open_layout(real_tree.bids_dir)
    runs = select_runs(layout, Selection(participants=["CSI1"]))
    assert len(runs) == 19 and {r.task for r in runs} == {TASK}


#: fMRIPrep 1.x name endings of ds001499 -> the modern ones.
_MODERN = {
    "_bold_space-T1w_preproc.nii.gz": "_space-T1w_desc-preproc_bold.nii.gz",
    "_bold_space-T1w_brainmask.nii.gz": "_space-T1w_desc-brain_mask.nii.gz",
    "_bold_confounds.tsv": "_desc-confounds_timeseries.tsv",
}


@pytest.mark.parametrize("naming", ["legacy", "modern"])
def test_fmriprep_folder_without_dataset_description(tmp_path, naming):
    """ds001499's fMRIPrep folder has no dataset_description.json: its files are found in either naming.

    pybids indexed such a folder as a raw dataset, whose configuration has no ``desc`` entity: the
    modern names were not recognised and the run was refused ("no preprocessed BOLD").
    """
    from bids_taskenc.bids.preprocessed import choose_space, find_preprocessed, open_derivatives

    tree = build_real_tree(tmp_path, ARCHIVE, sessions=["04"], shape=(6, 6, 5))
    if naming == "modern":
        for path in sorted(tree.fmriprep_dir.rglob("*")):
            for old, new in _MODERN.items():
                if path.name.endswith(old):
                    path.rename(path.with_name(path.name.removesuffix(old) + new))
    assert not (tree.fmriprep_dir / "dataset_description.json").exists()
    runs = select_runs(open_layout(tree.bids_dir), Selection())
    layouts = open_derivatives([tree.fmriprep_dir])
    assert choose_space(layouts, runs, None) == "T1w"
    found = [find_preprocessed(layouts, run, "T1w") for run in runs]
    assert len(found) == 9 and {f.naming for f in found} == {naming}
    for run, pre in zip(runs, found):
        stem = run.bold.name.removesuffix("_bold.nii.gz")
        assert pre.bold.name.startswith(stem) and pre.mask.name.startswith(stem)
        assert pre.confounds.name.startswith(stem) and pre.confounds.suffix == ".tsv"


def _run_log(out: Path) -> str:
    return "\n".join(p.read_text() for p in run_logs(out))


@pytest.mark.slow
def test_participant_and_group_levels_on_the_real_tree(real_tree, tmp_path):
    tree = real_tree
    out = tmp_path / "out"
    code = run_app(
        tree.bids_dir,
        out,
        "participant",
        "--features-dir",
        tree.features_dir,
        "--feature-spaces",
        f"user:{DRIVE_SPACE}",
        f"user:{NULL_SPACE}",
        "--stimuli-dir",
        tree.stimuli_dir.parent.parent,
        "--confounds",
        "FramewiseDisplacement",
        "X",
        "Y",
        "Z",
        "--work-dir",
        tmp_path / "work",
        "--seed",
        "0",
    )
    assert code == 0
    assert LOCALIZER_LINE in _run_log(out)
    for participant in tree.participants:
        r_path = statmap_path(out, participant, TASK, "T1w", DRIVE_SPACE, "r")
        meta = read_sidecar(sidecar_path(r_path))
        responses = meta["Responses"]
        assert (responses["NRuns"], responses["NTrials"], responses["NImages"]) == (19, 703, 693)
        assert len(meta["Sources"]) == 19
        assert all(s.endswith("_bold_space-T1w_preproc.nii.gz") and "localizer" not in s for s in meta["Sources"])
        truth = tree.truth_masks[participant]
        others = tree.brain_mask & ~truth
        q_drive = nib.load(statmap_path(out, participant, TASK, "T1w", DRIVE_SPACE, "q")).get_fdata()
        q_null = nib.load(statmap_path(out, participant, TASK, "T1w", NULL_SPACE, "q")).get_fdata()
        # seed 0, 693 images, 46 driven voxels of 760: all found, at most 2% of the others, the null space none
        assert ((q_drive < 0.05) & truth).sum() >= 0.9 * truth.sum()
        assert ((q_drive < 0.05) & others).sum() <= 0.02 * others.sum()
        assert (q_null < 0.05).sum() <= 2
        rois = pd.read_csv(
            derivative_path(out, sub=participant, task=TASK, desc="roi", suffix="scores", extension=".tsv"), sep="\t"
        )
        drive = rois[rois["feature_space"] == DRIVE_SPACE].set_index("roi")["fraction_significant"]
        assert drive[DRIVEN_ROI] >= 0.9 and drive.drop(["LH-PPA", "RH-PPA", DRIVEN_ROI]).max() <= 0.1

    code = run_app(tree.bids_dir, out, "group", "--offline", "--n-bootstrap", "20", "--no-reports")
    assert code == 0
    sim = pd.read_csv(
        derivative_path(out, task=TASK, desc="similarity", suffix="matrix", extension=".tsv"), sep="\t", index_col=0
    )
    assert sim.loc[DRIVE_SPACE, DRIVE_SPACE] == pytest.approx(1.0)
    assert abs(sim.loc[DRIVE_SPACE, NULL_SPACE]) <= 0.1
    # the copy's masks carry CSI2's release names (LHLO, RHLO, RHRRSC): every ROI is still found
    for roi in ("EarlyVis", "LOC", "OPA", "PPA", "RSC"):
        assert derivative_path(out, task=TASK, roi=roi, desc="similarity", suffix="matrix", extension=".tsv").exists()
    assert np.isfinite(sim.to_numpy()).all()
