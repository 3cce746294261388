"""The synthetic generator's size options: grid, per-session run counts, BOLD5000's counts."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from bids_taskenc.testing.cli import main as synthetic_main
from bids_taskenc.testing.design import _ellipsoid, _roi_masks
from bids_taskenc.testing.synthetic import (
    BOLD5000_COUNTS,
    BOLD5000_GRID,
    DEFAULT_GRID,
    LEAD_IN_S,
    TAIL_S,
    TR,
    TRIAL_SPACING_S,
)


def test_bold5000_counts_are_the_releases():
    runs = BOLD5000_COUNTS["runs_per_session"]
    assert BOLD5000_COUNTS["n_sessions"] == len(runs) == 15 and set(runs) == {9, 10} and sum(runs) == 142
    trials = sum(runs) * BOLD5000_COUNTS["trials_per_run"]
    images = trials - 3 * BOLD5000_COUNTS["n_repeated"] - 2 * BOLD5000_COUNTS["n_shown_thrice"]
    assert (trials, images) == (5254, 4916)
    assert (LEAD_IN_S + TRIAL_SPACING_S * BOLD5000_COUNTS["trials_per_run"] + TAIL_S) / TR == 194
    brain = _ellipsoid(BOLD5000_GRID, np.array(BOLD5000_GRID) / 2 - 0.5, np.array(BOLD5000_GRID) / 2 - 0.3)
    assert 45_000 < brain.sum() < 56_000


def test_default_grid_keeps_its_regions():
    """ROIs scale with the grid; on the default grid they are the fixed-radius ones of before."""
    x, y, z = DEFAULT_GRID
    masks = _roi_masks(DEFAULT_GRID)
    assert np.array_equal(
        masks["LHPPA"], _ellipsoid(DEFAULT_GRID, (x / 2 - 0.22 * x, 0.55 * y, 0.3 * z), (1.8, 1.8, 1.6))
    )
    big = _roi_masks((36, 36, 24))
    # twice the grid: radii 3.6, 3.6, 3.2 voxels, an ellipsoid of 4/3 pi 3.6 3.6 3.2 = 174 voxels
    assert big["LHPPA"].sum() == pytest.approx(4 / 3 * np.pi * 3.6 * 3.6 * 3.2, rel=0.1)


def test_cli_grid_runs_per_session_and_repeats(tmp_path):
    bids = tmp_path / "ds"
    assert (
        synthetic_main(
            [
                str(bids),
                "--participants",
                "1",
                "--grid",
                "20",
                "20",
                "14",
                "--sessions",
                "2",
                "--runs-per-session",
                "2",
                "1",
                "--trials-per-run",
                "12",
                "--repeated",
                "2",
                "--shown-thrice",
                "1",
            ]
        )
        == 0
    )
    events = sorted((bids / "sub-CSI1").rglob("*task-5000scenes_*_events.tsv"))
    assert [e.name.split("_")[1] for e in events] == ["ses-01", "ses-01", "ses-02"]
    shown = pd.concat([pd.read_csv(e, sep="\t") for e in events])["ImgName"].value_counts()
    assert len(shown) == 36 - 6 - 2 and sorted(shown[shown > 1].tolist()) == [3, 4, 4]
    bold = nib.load(next((bids / "sub-CSI1").rglob("*run-01_bold.nii.gz")))
    assert bold.shape == (20, 20, 14, (6 + 10 * 12 + 12) // 2)
    truth = json.loads((bids / "derivatives" / "synthetic_truth" / "truth.json").read_text())
    assert truth["grid"] == [20, 20, 14] and truth["runs_per_session"] == [2, 1] and truth["n_images"] == 28


def test_cli_int16_preprocessed_bold_and_feature_width(tmp_path):
    """--preproc-dtype int16 stores the preprocessed BOLD as BOLD5000's are: int16 with a scale factor."""
    args = [
        "--participants",
        "1",
        "--sessions",
        "1",
        "--runs-per-session",
        "1",
        "--trials-per-run",
        "24",
        "--repeated",
        "1",
        "--grid",
        "10",
        "10",
        "8",
        "--fmriprep-naming",
        "legacy",
        "--n-features",
        "7",
    ]
    assert synthetic_main([str(tmp_path / "f32"), *args]) == 0
    assert synthetic_main([str(tmp_path / "i16"), *args, "--preproc-dtype", "int16"]) == 0
    f32, i16 = (
        nib.load(next((tmp_path / d / "derivatives" / "fmriprep").rglob("*_preproc.nii.gz"))) for d in ("f32", "i16")
    )
    assert f32.get_data_dtype() == np.float32 and i16.get_data_dtype() == np.int16
    a, b = np.asarray(f32.dataobj), np.asarray(i16.dataobj)
    assert np.abs(a - b).max() <= 0.6 * i16.dataobj.slope  # the same series, to the int16 step
    feats = np.load(next((tmp_path / "i16" / "derivatives" / "features").rglob("features.npy")))
    assert feats.shape[1] == 7


def test_cli_bold5000_counts_exclude_explicit_counts(tmp_path, capsys):
    with pytest.raises(SystemExit):
        synthetic_main([str(tmp_path / "ds"), "--bold5000-counts", "--sessions", "2"])
    assert "--bold5000-counts sets the counts; drop --sessions" in capsys.readouterr().err


def test_template_puts_the_data_on_the_mni_brain(tmp_path):
    """--template: nilearn's MNI152 mask with its real affine, ROIs at their MNI places, a T1w underlay."""
    from nilearn.datasets import load_mni152_brain_mask

    from bids_taskenc.testing.synthetic import TEMPLATE_ROI_CENTRES_MM

    bids = tmp_path / "ds"
    assert (
        synthetic_main(
            [
                str(bids),
                "--participants",
                "1",
                "--sessions",
                "1",
                "--runs-per-session",
                "2",
                "--trials-per-run",
                "12",
                "--repeated",
                "1",
                "--template",
                "MNI152NLin2009cAsym",
            ]
        )
        == 0
    )
    func = bids / "derivatives" / "fmriprep" / "sub-CSI1" / "ses-01" / "func"
    bolds = sorted(func.glob("*_desc-preproc_bold.nii.gz"))
    assert [b.name for b in bolds] == [
        f"sub-CSI1_ses-01_task-5000scenes_run-0{r}_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz" for r in (1, 2)
    ]
    mask_img = nib.load(next(func.glob("*run-01_space-MNI152NLin2009cAsym_desc-brain_mask.nii.gz")))
    brain = np.asarray(mask_img.dataobj) > 0
    # the real brain: as many voxels as nilearn's 5 mm mask, 5 mm voxels in RAS, on the template's world grid
    reference = load_mni152_brain_mask(resolution=5)
    assert brain.sum() == int(np.asarray(reference.dataobj).sum()) and 10_000 < brain.sum() < 20_000
    assert np.allclose(mask_img.affine[:3, :3], np.diag([5.0, 5.0, 5.0]))
    offset = (mask_img.affine[:3, 3] - reference.affine[:3, 3]) / 5.0
    assert np.allclose(offset, np.round(offset))
    assert nib.load(bolds[0]).shape[:3] == brain.shape and np.allclose(nib.load(bolds[0]).affine, mask_img.affine)
    # not an ellipsoid filling its box: the real mask fills about half of its bounding box
    assert brain.mean() < 0.6

    spm = bids / "derivatives" / "spm" / "sub-CSI1"
    for roi, (x, y, z) in TEMPLATE_ROI_CENTRES_MM.items():
        for hemi, sign in (("LH", -1), ("RH", 1)):
            img = nib.load(spm / f"sub-CSI1_mask-{hemi}{roi}.nii.gz")
            inside = np.asarray(img.dataobj) > 0
            assert inside.sum() > 20 and not (inside & ~brain).any()
            xyz = nib.affines.apply_affine(img.affine, np.argwhere(inside))
            assert (sign * xyz[:, 0] > 0).all(), f"{hemi}{roi} crosses the midline"
            assert np.linalg.norm(xyz.mean(0) - (sign * x, y, z)) < 5.0
    truth = nib.load(bids / "derivatives" / "synthetic_truth" / "sub-CSI1" / "sub-CSI1_desc-scene_mask.nii.gz")
    ppa = nib.load(spm / "sub-CSI1_mask-LHPPA.nii.gz")
    assert (np.asarray(ppa.dataobj) > 0)[np.asarray(truth.dataobj) == 0].sum() == 0  # PPA is driven by 'scene'

    anat = nib.load(
        bids
        / "derivatives"
        / "fmriprep"
        / "sub-CSI1"
        / "anat"
        / "sub-CSI1_space-MNI152NLin2009cAsym_desc-preproc_T1w.nii.gz"
    )
    t1 = np.asarray(anat.dataobj)
    assert anat.shape == brain.shape and np.allclose(anat.affine, mask_img.affine)
    assert t1[brain].mean() > 3 * max(t1[~brain].mean(), 1e-6)  # a T1w: brain bright, background dark
    meta = json.loads((bids / "derivatives" / "synthetic_truth" / "truth.json").read_text())
    assert meta["space"] == meta["template"] == "MNI152NLin2009cAsym" and meta["grid"] == list(brain.shape)


def test_template_refuses_what_it_cannot_write(tmp_path):
    from bids_taskenc.testing.synthetic import make_synthetic_dataset

    with pytest.raises(ValueError, match="template must be one of"):
        make_synthetic_dataset(tmp_path / "a", template="MNI305")
    with pytest.raises(ValueError, match="not T1w"):
        make_synthetic_dataset(tmp_path / "b", template="MNI152NLin2009cAsym", space="T1w")
    with pytest.raises(ValueError, match="fsaverage"):
        make_synthetic_dataset(tmp_path / "c", template="MNI152NLin2009cAsym", surfaces=True)
    with pytest.raises(ValueError, match="legacy fMRIPrep naming"):
        make_synthetic_dataset(tmp_path / "d", template="MNI152NLin2009cAsym", fmriprep_naming="legacy")
