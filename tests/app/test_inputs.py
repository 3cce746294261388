"""Inputs the app must read, and bad inputs it must refuse with one clear line."""

from __future__ import annotations

import json
import shutil

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from bids_taskenc.errors import EXIT_INPUT_MISSING, EXIT_NO_FILES, EXIT_USAGE, EXIT_VALIDATION
from bids_taskenc.outputs.naming import sidecar_path
from bids_taskenc.outputs.reading import read_sidecar, statmap_path
from bids_taskenc.testing import make_synthetic_dataset

from .conftest import derivatives_under, files_under, run_app

pytestmark = pytest.mark.slow  # every test here runs the app end to end


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("bids_taskenc: error:")]
    assert len(errors) == 1, err
    return errors[0]


def _participant(root, out=None, *extra):
    bids = root / "bids"
    out = out or bids / "derivatives" / "bids_taskenc"
    return run_app(
        bids,
        out,
        "participant",
        "--features-dir",
        bids / "derivatives" / "features",
        "--work-dir",
        root / "work",
        "--cv-folds",
        "3",
        *extra,
    ), out


def test_legacy_fmriprep_names_and_bold5000_stimuli_layout(tmp_path):
    """ds001499's fMRIPrep 1.x names; images only in Scene_Stimuli/Presented_Stimuli/{COCO,...}."""
    ds = make_synthetic_dataset(
        tmp_path,
        n_participants=1,
        n_sessions=2,
        runs_per_session=3,
        fmriprep_naming="legacy",
        stimuli_layout="bold5000",
        seed=5,
    )
    assert not (ds.bids_dir / "stimuli").exists()
    out = ds.bids_dir / "derivatives" / "bids_taskenc"
    code = run_app(
        ds.bids_dir,
        out,
        "participant",
        "--features-dir",
        ds.features_dir,
        "--feature-spaces",
        "user:edge2da",
        "baseline:gabor",
        "--stimuli-dir",
        tmp_path / "Scene_Stimuli",
        "--work-dir",
        tmp_path / "work",
    )
    assert code == 0
    q_user = nib.load(statmap_path(out, "CSI1", "5000scenes", "T1w", "edge2da", "q")).get_fdata()
    truth = ds.truth_masks["CSI1"]["edge"]
    assert ((q_user < 0.05) & truth).sum() >= 0.9 * truth.sum()
    r_gabor = nib.load(statmap_path(out, "CSI1", "5000scenes", "T1w", "gabor", "r")).get_fdata()
    # the images' grating energy follows the early-visual latent: Gabor energy predicts that region best
    assert r_gabor[truth].mean() > r_gabor[ds.brain_masks["CSI1"] & ~truth].mean() + 0.2
    meta = read_sidecar(sidecar_path(statmap_path(out, "CSI1", "5000scenes", "T1w", "gabor", "r")))
    assert meta["Sources"][0].endswith("_bold_space-T1w_preproc.nii.gz")


def test_config_file_and_command_line_override(small_copy, tmp_path):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text('cv_folds = 4\ntest-fraction = 0.2\nfeature_spaces = ["user:scene3da"]\n')
    code, out = _participant(small_copy, None, "--config", cfg, "--cv-folds", "5")
    assert code == 0
    meta = read_sidecar(sidecar_path(statmap_path(out, "CSI1", "5000scenes", "T1w", "scene3da", "r")))
    assert meta["CVFolds"] == 5 and meta["Split"]["TestFraction"] == 0.2
    assert len(list((out / "sub-CSI1" / "func").glob("*_stat-r_statmap.nii.gz"))) == 1


def test_localizer_task_is_left_out_and_participant_label_forms(small_copy):
    code, out = _participant(small_copy, None, "--participant-label", "sub-CSI1", "--feature-spaces", "user:random")
    assert code == 0
    names = [p.name for p in files_under(out)]
    assert names and not any("localizer" in n for n in names)


def test_bids_filter_file_selecting_nothing_exits_18(small_copy, tmp_path, capsys):
    filt = tmp_path / "filter.json"
    filt.write_text(json.dumps({"bold": {"session": "99"}}))
    code, out = _participant(small_copy, None, "--bids-filter-file", filt)
    assert code == EXIT_NO_FILES
    assert "selected no" in _error_line(capsys)
    assert files_under(out) == []


def test_missing_bids_dir(tmp_path, capsys):
    code = run_app(tmp_path / "nope", tmp_path / "out", "participant")
    assert code == EXIT_INPUT_MISSING
    assert str(tmp_path / "nope") in _error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_folder_without_dataset_description(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    code = run_app(tmp_path / "data", tmp_path / "out", "participant")
    assert code == EXIT_VALIDATION
    assert "dataset_description.json" in _error_line(capsys)


def test_invalid_bids_file_name_fails_validation_unless_skipped(small_copy, capsys):
    bad = small_copy / "bids" / "sub-CSI1" / "ses-01" / "func" / "notes_about_run.txt"
    bad.write_text("x")
    code, out = _participant(small_copy, None, "--feature-spaces", "user:random")
    assert code == EXIT_VALIDATION
    assert "notes_about_run.txt" in _error_line(capsys)
    assert files_under(out) == []
    code, _ = _participant(small_copy, None, "--feature-spaces", "user:random", "--skip-bids-validation")
    assert code == 0


def test_unknown_participant(small_copy, capsys):
    code, out = _participant(small_copy, None, "--participant-label", "CSI9")
    assert code == EXIT_USAGE
    assert "sub-CSI9" in _error_line(capsys)
    assert files_under(out) == []


def test_usage_error_exits_64(small_copy, capsys):
    code = run_app(small_copy / "bids", small_copy / "out", "participant", "--cv-folds", "zero")
    assert code == EXIT_USAGE
    _error_line(capsys)


def test_events_naming_a_missing_stimulus(small_copy, capsys):
    stim = small_copy / "bids" / "stimuli"
    victim = sorted(stim.iterdir())[0]
    victim.unlink()
    code, out = _participant(small_copy, None, "--feature-spaces", "baseline:pixels")
    assert code == EXIT_INPUT_MISSING
    line = _error_line(capsys)
    assert victim.name in line and "_events.tsv" in line
    assert derivatives_under(out) == []  # the run log and crash file only


def test_features_dir_lacking_a_stimulus_the_events_need(small_copy, capsys):
    folder = small_copy / "bids" / "derivatives" / "features" / "scene3da"
    table = pd.read_csv(folder / "stimuli.tsv", sep="\t")
    feats = np.load(folder / "features.npy")
    dropped = table["stimulus"].iloc[0]
    table.iloc[1:].to_csv(folder / "stimuli.tsv", sep="\t", index=False)
    np.save(folder / "features.npy", feats[1:])
    code, out = _participant(small_copy, None, "--feature-spaces", "user:scene3da")
    assert code != 0
    line = _error_line(capsys)
    assert "stimuli.tsv" in line and dropped in line
    assert derivatives_under(out) == []  # the run log and crash file only


def test_mask_and_bold_shapes_that_do_not_match(small_copy, capsys):
    func = small_copy / "bids" / "derivatives" / "fmriprep" / "sub-CSI1" / "ses-01" / "func"
    mask = sorted(func.glob("*_desc-brain_mask.nii.gz"))[0]
    img = nib.load(mask)
    nib.save(nib.Nifti1Image(np.ones((5, 5, 5), np.uint8), img.affine), mask)
    code, out = _participant(small_copy, None, "--feature-spaces", "user:random")
    assert code != 0
    line = _error_line(capsys)
    assert mask.name in line and "shape" in line
    assert derivatives_under(out) == []  # the run log and crash file only


@pytest.mark.parametrize("where", ["same", "parent"])
def test_output_dir_must_not_be_or_contain_the_input(small_copy, capsys, where):
    bids = small_copy / "bids"
    out = bids if where == "same" else small_copy
    before = sorted(p.name for p in files_under(small_copy))
    code = run_app(bids, out, "participant", "--features-dir", bids / "derivatives" / "features")
    assert code == EXIT_USAGE
    assert "output_dir" in _error_line(capsys)
    assert sorted(p.name for p in files_under(small_copy)) == before


def test_group_without_participant_outputs(small_copy, capsys):
    code = run_app(small_copy / "bids", small_copy / "bids" / "derivatives" / "bids_taskenc", "group")
    assert code == EXIT_INPUT_MISSING
    _error_line(capsys)


def test_second_participant_failing_leaves_the_first_intact(pair, tmp_path, capsys):
    bids = pair / "bids"  # a private copy of the session's two-participant dataset
    events = sorted((bids / "sub-CSI2").rglob("*task-5000scenes*_events.tsv"))[0]
    table = pd.read_csv(events, sep="\t")
    table["ImgName"] = table["stim_file"] = "not_in_the_features.jpg"
    table.to_csv(events, sep="\t", index=False)
    out = bids / "derivatives" / "bids_taskenc"
    code = run_app(
        bids,
        out,
        "participant",
        "--features-dir",
        bids / "derivatives" / "features",
        "--feature-spaces",
        "user:random",
        "--work-dir",
        tmp_path / "work",
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "sub-CSI2: FAILED" in err and "not_in_the_features.jpg" in err
    assert (out / "sub-CSI1" / "func").is_dir() and not (out / "sub-CSI2").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".sub-")], "staging folders must be cleaned"
    shutil.rmtree(out)


def test_single_trial_glm_responses(tmp_path):
    ds = make_synthetic_dataset(tmp_path, n_participants=1, n_sessions=2, runs_per_session=3, seed=6)
    out = ds.bids_dir / "derivatives" / "bids_taskenc"
    code = run_app(
        ds.bids_dir,
        out,
        "participant",
        "--features-dir",
        ds.features_dir,
        "--responses",
        "lsa",
        "--hrf-model",
        "spm",
        "--feature-spaces",
        "user:scene3da",
        "--work-dir",
        tmp_path / "work",
    )
    assert code == 0
    path = statmap_path(out, "CSI1", "5000scenes", "T1w", "scene3da", "q")
    q = nib.load(path).get_fdata()
    truth = ds.truth_masks["CSI1"]["scene"]
    assert ((q < 0.05) & truth).sum() >= 0.9 * truth.sum()
    meta = read_sidecar(sidecar_path(path))
    assert meta["Responses"]["ResponseModel"] == "lsa" and meta["Responses"]["HRF"] == "spm"


def test_betas_without_betas_dir_is_a_usage_error(small_copy, capsys):
    code, _ = _participant(small_copy, None, "--responses", "betas")
    assert code == EXIT_USAGE
    assert "--betas-dir" in _error_line(capsys)
