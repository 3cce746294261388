"""No silent wrong answers, no lost work: faults stay with their participant and are named.

Each test breaks one thing on a small synthetic dataset and checks the one
line that names it, the exit code, what was (not) written, and the crash and
log files in ``logs/``.
"""

from __future__ import annotations

import errno
import gzip
import json
import os
import pickle
import shutil
import stat
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from bids_taskenc.errors import EXIT_FAILURE, EXIT_INPUT_MISSING, EXIT_USAGE, EXIT_VALIDATION
from bids_taskenc.outputs.logs import crash_files, run_logs
from bids_taskenc.workflow.cache import WorkCache

from .conftest import derivatives_under, files_under, run_app, tree_digest

FAST = ("--feature-spaces", "user:scene3da", "--contrast-bootstrap", "0", "--no-reports", "--cv-folds", "3")


def _run(root, *extra, out=None):
    """The participant level on ``root``'s (broken) dataset; its input tree must come out as it went in."""
    bids = root / "bids"
    out = out or root / "out"
    before = tree_digest(bids)
    code = run_app(
        bids,
        out,
        "participant",
        "--features-dir",
        bids / "derivatives" / "features",
        "--work-dir",
        root / "work",
        *FAST,
        *extra,
    )
    assert tree_digest(bids) == before, "the run changed its input dataset"
    return code, out


def _fmriprep_func(root, sub="CSI1"):
    return root / "bids" / "derivatives" / "fmriprep" / f"sub-{sub}" / "ses-01" / "func"


def _bold(root, sub="CSI1"):
    return sorted(_fmriprep_func(root, sub).glob("*_desc-preproc_bold.nii.gz"))[0]


def _annex(path):
    """Make ``path`` what a DataLad clone holds before ``datalad get``: a link into .git/annex that points nowhere."""
    path.unlink()
    os.symlink(
        f"../../../.git/annex/objects/Xk/9P/SHA256E-s1234--abcd{''.join(path.suffixes)}/"
        f"SHA256E-s1234--abcd{''.join(path.suffixes)}",
        path,
    )


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _corrupt(path):
    path.write_bytes(b"this is not a NIfTI file at all" * 20)


def _bad_onset(root):
    events = sorted((root / "bids" / "sub-CSI1").rglob("*task-5000scenes*_events.tsv"))[0]
    table = pd.read_csv(events, sep="\t")
    table["onset"] = table["onset"].astype(object)
    table.loc[3, "onset"] = "12.5s"
    table.to_csv(events, sep="\t", index=False)
    return events


def _case(root, kind):
    """Break sub-CSI1 one way; returns (file that must be named, words that must be in the line)."""
    if kind == "truncated-gz":
        bold = _bold(root)
        _truncate(bold)
        return bold, ["truncated"]
    if kind == "corrupt-nifti":
        bold = _bold(root)
        _corrupt(bold)
        return bold, ["not a readable NIfTI"]
    if kind == "bad-onset":
        return _bad_onset(root), ["onset", "12.5s"]
    if kind == "annexed-bold":
        bold = _bold(root)
        _annex(bold)
        return bold, ["datalad get"]
    if kind == "annexed-mask":
        mask = sorted(_fmriprep_func(root).glob("*_desc-brain_mask.nii.gz"))[0]
        _annex(mask)
        return mask, ["datalad get"]
    if kind == "annexed-events":
        events = sorted((root / "bids" / "sub-CSI1").rglob("*task-5000scenes*_events.tsv"))[-1]
        _annex(events)
        return events, ["datalad get"]
    raise ValueError(kind)


@pytest.mark.slow
@pytest.mark.parametrize(
    "kind", ["truncated-gz", "corrupt-nifti", "bad-onset", "annexed-bold", "annexed-mask", "annexed-events"]
)
def test_a_broken_input_fails_its_participant_only_naming_the_file(pair, kind, capfd):
    named, words = _case(pair, kind)
    code, out = _run(pair)
    err = capfd.readouterr().err
    assert code == EXIT_FAILURE
    assert "Traceback" not in err
    line = next(ln for ln in err.splitlines() if "sub-CSI1: FAILED" in ln)
    assert str(named) in line and all(w in line for w in words), line
    assert "sub-CSI2: ok" in err and (out / "sub-CSI2" / "func").is_dir() and not (out / "sub-CSI1").exists()
    crashes = crash_files(out)
    assert len(crashes) == 1 and "-CSI1-" in crashes[0].name and crashes[0].name in line
    assert "Traceback (most recent call last)" in crashes[0].read_text()
    logs = run_logs(out)
    assert len(logs) == 1
    text = logs[0].read_text()
    assert "sub-CSI1: FAILED" in text and " DEBUG " in text  # the whole log, DEBUG included


@pytest.mark.slow
def test_an_unexpected_exception_is_one_line_and_a_crash_file(pair, capfd, monkeypatch):
    from bids_taskenc.workflow import fit as participant

    real = participant.fit_encoding_model
    calls = []

    def buggy(*args, **kwargs):  # a bug hit by the first participant only
        calls.append(1)
        if len(calls) == 1:
            raise TypeError("unsupported operand type(s) for +: 'int' and 'str'")
        return real(*args, **kwargs)

    monkeypatch.setattr(participant, "fit_encoding_model", buggy)
    code, out = _run(pair)
    err = capfd.readouterr().err
    assert code == EXIT_FAILURE and "Traceback" not in err
    assert "sub-CSI1: FAILED: TypeError: unsupported operand" in err and "sub-CSI2: ok" in err
    assert "buggy" in crash_files(out)[0].read_text()  # the traceback reaches the failing frame


@pytest.mark.slow
def test_stop_on_first_crash_leaves_the_rest_unprocessed(pair, capfd):
    _truncate(_bold(pair))
    code, out = _run(pair, "--stop-on-first-crash")
    err = capfd.readouterr().err
    assert code == EXIT_FAILURE
    assert "sub-CSI1: FAILED" in err and "not processed (--stop-on-first-crash): sub-CSI2" in err
    assert not (out / "sub-CSI2").exists()


@pytest.mark.slow
def test_single_participant_input_error_keeps_its_exit_code_and_one_line(small_copy, capsys):
    _annex(_bold(small_copy))
    code, out = _run(small_copy)
    assert code == EXIT_INPUT_MISSING
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("bids_taskenc: error:")]
    assert len(lines) == 1 and "datalad get" in lines[0] and str(_bold(small_copy)) in lines[0]
    assert derivatives_under(out) == []


@pytest.mark.slow
def test_annexed_stimulus_and_mask_are_named_before_any_work(small_copy, capsys):
    stim = sorted((small_copy / "bids" / "stimuli").iterdir())[0]
    _annex(stim)
    code, out = _run(small_copy, "--feature-spaces", "baseline:pixels")
    assert code == EXIT_INPUT_MISSING
    err = capsys.readouterr().err
    assert f"{stim}: stimulus image" in err and "datalad get" in err
    mask = small_copy / "annexed_mask.nii.gz"
    os.symlink(".git/annex/objects/aa/bb/SHA256E-s1--x.nii.gz/SHA256E-s1--x.nii.gz", mask)
    code, _ = _run(small_copy, "--mask", mask)
    assert code == EXIT_INPUT_MISSING
    assert "--mask" in capsys.readouterr().err


@pytest.mark.slow
def test_a_full_disk_names_the_file(small_copy, capfd, monkeypatch):
    import nibabel

    def full(img, filename, *a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(nibabel, "save", full)
    code, out = _run(small_copy)
    err = capfd.readouterr().err
    assert code == EXIT_FAILURE and "Traceback" not in err
    line = next(ln for ln in err.splitlines() if "No space left on device" in ln)
    assert "_mask.nii.gz" in line or "_statmap.nii.gz" in line, line


# --- option values -----------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "toml,word",
    [
        ("alphas = 10", "alphas"),
        ("seed = 1.5", "seed"),
        ('cv_folds = "3"', "cv_folds"),
        ("no_reports = 1", "no_reports"),
    ],
)
def test_config_values_of_the_wrong_type_are_usage_errors(small_copy, tmp_path, capsys, toml, word):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(toml + "\n")
    code, out = _run(small_copy, "--config", cfg)
    assert code == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"{cfg}: {word} = " in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize("option", [("--mem-gb", "-1"), ("--mem-gb", "0"), ("--seed", "-3"), ("--high-pass", "0")])
def test_out_of_range_numbers_are_usage_errors(small_copy, capsys, option):
    code, out = _run(small_copy, *option)
    assert code == EXIT_USAGE
    assert option[0] in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.slow
def test_missing_mask_file_is_66_naming_the_flag(small_copy, capsys):
    code, out = _run(small_copy, "--mask", small_copy / "nope.nii.gz")
    assert code == EXIT_INPUT_MISSING
    err = capsys.readouterr().err
    assert "--mask" in err and "nope.nii.gz" in err
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize("which", ["output", "work"])
def test_an_output_path_that_is_a_file(small_copy, capsys, which):
    target = small_copy / ("out" if which == "output" else "work")
    target.write_text("a file, not a folder")
    code, _ = _run(small_copy)
    assert code == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"{target}: " in err and "not a folder" in err and "Traceback" not in err


# --- inputs that gave wrong answers without a word -----------------------------------------------------------


def _shifted(img, shift_mm=0.0, zoom=1.0):
    affine = img.affine.copy()
    affine[:3, :3] *= zoom
    affine[:3, 3] += shift_mm
    return nib.Nifti1Image(np.asarray(img.dataobj), affine)


@pytest.mark.slow
@pytest.mark.parametrize("change", [{"shift_mm": 30.0}, {"zoom": 2.0}])
def test_a_mask_on_another_grid_is_an_error_naming_both_grids(small_copy, tmp_path, capsys, change):
    bold = _bold(small_copy)
    mask = sorted(_fmriprep_func(small_copy).glob("*_desc-brain_mask.nii.gz"))[0]
    user = tmp_path / "mask.nii.gz"
    nib.save(_shifted(nib.load(mask), **change), user)
    code, out = _run(small_copy, "--mask", user)
    assert code == EXIT_FAILURE
    line = next(ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("bids_taskenc: error:"))
    assert str(user) in line and str(bold) in line and line.count("shape (10, 10, 8)") == 2, line
    assert derivatives_under(out) == []


@pytest.mark.slow
def test_resample_mask_takes_a_mask_of_another_grid(small_copy, tmp_path, capsys):
    mask_path = sorted(_fmriprep_func(small_copy).glob("*_desc-brain_mask.nii.gz"))[0]
    brain = nib.load(mask_path)
    data = np.asarray(brain.dataobj)
    fine = data.repeat(2, 0).repeat(2, 1).repeat(2, 2)  # the same mask at half the voxel size
    affine = brain.affine.copy()
    affine[:3, :3] /= 2
    affine[:3, 3] -= np.diag(brain.affine)[:3] / 4  # voxel centres of the finer grid
    user = tmp_path / "fine.nii.gz"
    nib.save(nib.Nifti1Image(fine, affine), user)
    code, out = _run(small_copy, "--mask", user)
    assert code == EXIT_FAILURE and str(user) in capsys.readouterr().err
    code, out = _run(small_copy, "--mask", user, "--resample-mask")
    assert code == 0
    written = nib.load(next((out / "sub-CSI1" / "func").glob("*_desc-brain_mask.nii.gz")))
    assert np.allclose(written.affine, brain.affine) and 0 < np.asarray(written.dataobj).sum() <= (data > 0).sum()


@pytest.mark.slow
def test_a_brain_mask_on_another_grid_is_an_error(small_copy, capsys):
    mask = sorted(_fmriprep_func(small_copy).glob("*_desc-brain_mask.nii.gz"))[0]
    nib.save(_shifted(nib.load(mask), shift_mm=30.0), mask)
    code, out = _run(small_copy)
    assert code == EXIT_FAILURE
    line = next(ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("bids_taskenc: error:"))
    assert str(mask) in line and "brain mask grid" in line and "origin" in line


@pytest.mark.slow
def test_feature_spaces_with_one_bids_label_are_refused_before_anything(small_copy, capsys):
    features = small_copy / "bids" / "derivatives" / "features"
    shutil.copytree(features / "edge2da", features / "edge-2da")
    code, out = _run(small_copy, "--feature-spaces", "user:edge2da", "user:edge-2da")
    assert code == EXIT_USAGE
    err = capsys.readouterr().err
    assert "'user:edge2da'" in err and "'user:edge-2da'" in err and "edge2da" in err
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_overflowing_features_name_the_space(small_copy, capsys):
    folder = small_copy / "bids" / "derivatives" / "features" / "scene3da"
    feats = np.load(folder / "features.npy").astype(np.float64)
    feats[5, 2] = 1e200
    np.save(folder / "features.npy", feats)
    code, out = _run(small_copy)
    assert code == EXIT_FAILURE
    line = next(ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("bids_taskenc: error:"))
    assert "user:scene3da" in line and "infinite" in line
    assert derivatives_under(out) == []


@pytest.mark.slow
def test_constant_features_are_warned_about(small_copy, capfd):
    folder = small_copy / "bids" / "derivatives" / "features" / "scene3da"
    feats = np.load(folder / "features.npy")
    np.save(folder / "features.npy", np.ones_like(feats))
    code, _ = _run(small_copy)
    assert code == 0
    warnings = [ln for ln in capfd.readouterr().err.splitlines() if " WARNING " in ln]
    assert any("user:scene3da" in ln and "constant" in ln for ln in warnings), warnings


# --- the work cache holds data, not code ----------------------------------------------------------------------


class _Planted:
    """A pickle that, loaded, creates a file: what an attacker with write access to the work dir would plant."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.slow
def test_work_cache_entries_are_data_and_planted_pickles_never_run(small_copy, tmp_path, capfd):
    code, out = _run(small_copy)
    assert code == 0
    cache = small_copy / "work" / "cache"
    entries = [p for p in cache.rglob("*") if p.is_file()]
    assert entries and {p.suffix for p in entries} <= {".npy", ".json"}
    for p in entries:
        if p.suffix == ".npy":
            np.load(p, allow_pickle=False)
    reference = {p.relative_to(out): p.read_bytes() for p in derivatives_under(out) if p.suffix != ".json"}
    marker = tmp_path / "owned"
    evil = pickle.dumps(_Planted(marker))
    for p in entries:
        p.write_bytes(evil)
    capfd.readouterr()
    code, out = _run(small_copy)
    assert code == 0
    assert not marker.exists(), "a planted pickle in the work dir ran"
    assert "unusable work-cache entry" in capfd.readouterr().err
    assert {p.relative_to(out): p.read_bytes() for p in derivatives_under(out) if p.suffix != ".json"} == reference


def test_work_cache_entry_with_another_key_is_recomputed(tmp_path, caplog):
    cache = WorkCache(tmp_path)
    calls = []

    def compute(value):
        calls.append(value)
        return {"x": np.arange(3, dtype=np.float32), "n": value}

    assert cache.get_or_compute("kind", {"a": 1}, lambda: compute(1))["n"] == 1
    moved = cache.entry("kind", {"a": 2})
    shutil.copytree(cache.entry("kind", {"a": 1}), moved)  # an entry copied under another key
    got = cache.get_or_compute("kind", {"a": 2}, lambda: compute(2))
    assert got["n"] == 2 and calls == [1, 2]
    assert "unusable work-cache entry" in caplog.text
    again = cache.get_or_compute("kind", {"a": 2}, lambda: compute(3))
    assert again["n"] == 2 and calls == [1, 2] and again["x"].dtype == np.float32
    meta = json.loads((moved / "entry.json").read_text())
    meta["value"]["__dict__"]["x"] = {"__npy__": "../../../etc/passwd"}
    (moved / "entry.json").write_text(json.dumps(meta))
    assert cache.get_or_compute("kind", {"a": 2}, lambda: compute(4))["n"] == 4


# --- outputs readable by the group ------------------------------------------------------------------------------


@pytest.mark.slow
def test_outputs_and_cache_entries_get_the_umask_mode(small_copy):
    old = os.umask(0o022)
    try:
        code, out = _run(small_copy, "--save-features")
    finally:
        os.umask(old)
    assert code == 0
    files = files_under(out) + files_under(small_copy / "work")
    assert len(files) > 20
    modes = {p.relative_to(small_copy).as_posix(): oct(stat.S_IMODE(p.stat().st_mode)) for p in files}
    assert {m for m in modes.values()} == {"0o644"}, {k: m for k, m in modes.items() if m != "0o644"}
    dirs = [p for p in out.rglob("*") if p.is_dir()]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o755 for p in dirs), [
        (p, oct(stat.S_IMODE(p.stat().st_mode))) for p in dirs if stat.S_IMODE(p.stat().st_mode) != 0o755
    ]


# --- the group level is staged and swapped in ---------------------------------------------------------------------


def _group(root, *extra, out):
    before = tree_digest(root / "bids")
    code = run_app(
        root / "bids",
        out,
        "group",
        "--offline",
        "--n-bootstrap",
        "20",
        "--group-permutations",
        "50",
        "--no-reports",
        *extra,
    )
    assert tree_digest(root / "bids") == before, "the group run changed its input dataset"
    return code


def _group_files(out):
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in files_under(out)
        if p.relative_to(out).parts[0] == "group" or "_matrix." in p.name
    }


@pytest.mark.slow
def test_group_rerun_over_fewer_participants_leaves_no_older_file(pair):
    code, out = _run(pair, "--feature-spaces", "user:scene3da", "user:edge2da", "user:random")
    assert code == 0
    assert _group(pair, out=out) == 0
    before = _group_files(out)
    assert any("desc-consistency" in k for k in before) and any(k.startswith("sub-CSI2/") for k in before)
    assert _group(pair, "--participant-label", "CSI1", "--allow-one-participant", out=out) == 0
    after = _group_files(out)
    assert not any("desc-consistency" in k for k in after), "consistency of the two-participant run is stale"
    assert not any(k.startswith("sub-CSI2/") for k in after), "sub-CSI2's matrices are of the older run"
    meta = json.loads((out / "group" / "task-5000scenes_desc-similarity_matrix.json").read_text())
    assert meta["Participants"] == ["CSI1"]
    assert not list(out.glob(".group.*"))


@pytest.mark.slow
def test_group_killed_midway_leaves_the_previous_outputs(pair, monkeypatch):
    from bids_taskenc.group import graph

    code, out = _run(pair, "--feature-spaces", "user:scene3da", "user:edge2da", "user:random")
    assert code == 0
    assert _group(pair, out=out) == 0
    before = _group_files(out)

    def killed(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(graph, "graphml_text", killed)  # after the matrices and the tree are written
    assert _group(pair, "--n-bootstrap", "30", out=out) == 130
    assert _group_files(out) == before, "a killed group run must leave the previous group outputs as they were"
    assert not list(out.glob(".group.*"))


def test_truncation_check_sees_a_cut_gzip_only(tmp_path):
    from bids_taskenc.bids.files import check_nifti
    from bids_taskenc.errors import InputDataError

    img = nib.Nifti1Image(np.random.default_rng(0).normal(size=(6, 5, 4, 3)).astype(np.float32), np.eye(4))
    good = tmp_path / "good.nii.gz"
    nib.save(img, good)
    check_nifti(good, "BOLD")
    multi = tmp_path / "multi.nii.gz"  # two gzip members: the trailer holds only the last one's size
    raw = gzip.decompress(good.read_bytes())
    multi.write_bytes(gzip.compress(raw[:1000]) + gzip.compress(raw[1000:]))
    check_nifti(multi, "BOLD")
    cut = tmp_path / "cut.nii.gz"
    cut.write_bytes(good.read_bytes()[:-40])
    with pytest.raises(InputDataError, match="cut.nii.gz: BOLD is not a readable NIfTI image"):
        check_nifti(cut, "BOLD")


def test_whole_gzip_is_checked_from_its_trailer_without_decompressing(tmp_path, monkeypatch):
    """A whole .nii.gz needs no inflation: its trailer's size equals the header's (the offset read to be 0, so
    every BOLD run was decompressed once more: 305 s of a 35 min whole-brain participant)."""
    from bids_taskenc.bids import files

    good = tmp_path / "good.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((6, 5, 4, 3), np.int16), np.eye(4)), good)

    def no_inflation(*args, **kwargs):
        raise AssertionError("decompressed a whole file")

    monkeypatch.setattr(files.gzip, "open", no_inflation)
    files.check_nifti(good, "BOLD")


# === issue 24, inputs: bad inputs refused by name before any work (helper `inputs`) ===========================


def _events(root, run=0):
    return sorted((root / "bids" / "sub-CSI1").rglob("*task-5000scenes*_events.tsv"))[run]


def _error_line(err: str) -> str:
    return next(ln for ln in err.splitlines() if ln.startswith("bids_taskenc: error:"))


def _run_files(events, bold=None):
    from bids_taskenc.bids.dataset import RunFiles

    return RunFiles("CSI1", "01", "5000scenes", 1, bold or events, events, 2.0)


def test_one_file_name_in_two_stimulus_folders_is_two_images(tmp_path):
    from bids_taskenc.bids.trials import attach_stimulus_paths, build_trials

    stimuli = tmp_path / "stimuli"
    (stimuli / "other").mkdir(parents=True)
    (stimuli / "forest23.jpg").write_bytes(b"one image")
    (stimuli / "other" / "forest23.jpg").write_bytes(b"another image")
    events = tmp_path / "events.tsv"
    events.write_text("onset\tduration\tstim_file\n0\t1\tforest23.jpg\n10\t1\tother/forest23.jpg\n")
    run = _run_files(events)
    trials = attach_stimulus_paths(build_trials([run]), [stimuli], {run.label: events})
    assert list(trials["image_id"]) == ["forest23.jpg", "other/forest23.jpg"]
    assert list(trials["repeat_index"]) == [0, 0]  # two images, not one shown twice
    assert list(trials["stimulus_path"]) == [(stimuli / "forest23.jpg").resolve(), (stimuli / "other/forest23.jpg")]


def test_a_stimulus_two_different_files_could_be_is_an_error_naming_both(tmp_path):
    from bids_taskenc.bids.trials import attach_stimulus_paths, build_trials
    from bids_taskenc.errors import InputDataError

    stimuli = tmp_path / "stimuli"
    for folder, content in (("COCO", b"a"), ("Scene", b"b"), ("ImageNet", b"a")):
        (stimuli / folder).mkdir(parents=True)
        (stimuli / folder / ("x.jpg" if folder != "ImageNet" else "y.jpg")).write_bytes(content)
    (stimuli / "ImageNet" / "z.jpg").write_bytes(b"z")
    (stimuli / "Scene" / "z.jpg").write_bytes(b"z")  # the same bytes twice: one image, no ambiguity
    events = tmp_path / "events.tsv"
    events.write_text("onset\tduration\tImgName\n0\t1\tz.jpg\n10\t1\tx.jpg\n")
    run = _run_files(events)
    with pytest.raises(InputDataError) as err:
        attach_stimulus_paths(build_trials([run]), [stimuli], {run.label: events})
    message = str(err.value)
    assert str(events) in message and "'x.jpg' is ambiguous" in message
    assert str(stimuli / "COCO" / "x.jpg") in message and str(stimuli / "Scene" / "x.jpg") in message
    events.write_text("onset\tduration\tImgName\n0\t1\tz.jpg\n10\t1\tScene/x.jpg\n")  # the folder settles it
    trials = attach_stimulus_paths(build_trials([run]), [stimuli], {run.label: events})
    assert trials["stimulus_path"].iloc[1] == (stimuli / "Scene" / "x.jpg").resolve()


def test_user_features_key_stimuli_by_their_path(tmp_path):
    from bids_taskenc.features.base import FeatureError
    from bids_taskenc.features.user import load_user_feature_space

    folder = tmp_path / "space"
    folder.mkdir()
    np.save(folder / "features.npy", np.array([[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]))
    (folder / "stimuli.tsv").write_text("stimulus\nforest23.jpg\nother/forest23.jpg\nScene/lake.jpg\n")
    space = load_user_feature_space(folder)  # one name in two folders: two rows, not a duplicate
    got = space.lookup(["other/forest23.jpg", "forest23.jpg", "lake.jpg"])
    np.testing.assert_array_equal(got, [[0, 1], [1, 0], [5, 5]])
    (folder / "stimuli.tsv").write_text("stimulus\nforest23.jpg\nriver.jpg\nScene/lake.jpg\n")
    space = load_user_feature_space(folder)
    with pytest.raises(FeatureError, match=r"'other/forest23.jpg' that the events name is ambiguous"):
        space.lookup(["forest23.jpg", "other/forest23.jpg"])  # one row cannot be both images


@pytest.mark.slow
def test_a_duplicated_events_row_is_refused_naming_its_lines(small_copy, capsys):
    events = _events(small_copy)
    lines = events.read_text().splitlines(keepends=True)
    events.write_text("".join(lines[:4] + [lines[3]] + lines[4:]))
    code, out = _run(small_copy)
    assert code == EXIT_FAILURE
    line = _error_line(capsys.readouterr().err)
    assert str(events) in line and "lines 4 and 5 are the same row" in line, line
    assert derivatives_under(out) == []


def _set_tr(path, seconds, unit="sec"):
    img = nib.load(path)
    header = img.header.copy()
    header.set_xyzt_units(xyz="mm", t=unit)
    zooms = list(header.get_zooms())
    zooms[3] = seconds
    header.set_zooms(zooms)
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj), img.affine, header), path)


@pytest.mark.slow
def test_sidecar_tr_that_disagrees_with_the_header_is_refused_naming_both(small_copy, capsys):
    sidecar = small_copy / "bids" / "task-5000scenes_bold.json"
    sidecar.write_text(json.dumps({"TaskName": "5000scenes", "RepetitionTime": 1.0}))
    code, out = _run(small_copy)
    assert code == EXIT_FAILURE
    line = _error_line(capsys.readouterr().err)
    assert str(_bold(small_copy)) in line and str(sidecar) in line, line
    assert "TR of 2 s (pixdim[4] = 2 sec)" in line and "RepetitionTime 1 s" in line, line
    assert derivatives_under(out) == []


@pytest.mark.slow
def test_preprocessed_header_tr_is_compared_in_its_own_units(small_copy, capsys):
    bold = _bold(small_copy)
    _set_tr(bold, 2000.0, "msec")  # the same 2 s: accepted
    for raw in (small_copy / "bids" / "sub-CSI1").rglob("*_bold.nii.gz"):
        _set_tr(raw, 2000000.0, "usec")
    code, out = _run(small_copy)
    assert code == 0
    _set_tr(bold, 1.0, "sec")
    code, _ = _run(small_copy)
    assert code == EXIT_FAILURE
    line = _error_line(capsys.readouterr().err)
    assert str(bold) in line and "TR of 1 s" in line and "RepetitionTime 2 s" in line, line


def test_header_tr_reads_units_and_ignores_unknown_ones(tmp_path):
    from bids_taskenc.bids.files import header_repetition_time

    path = tmp_path / "bold.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2, 3), np.float32), np.eye(4)), path)
    for seconds, unit, expected in ((2.0, "sec", 2.0), (1500.0, "msec", 1.5), (720000.0, "usec", 0.72)):
        _set_tr(path, seconds, unit)
        assert header_repetition_time(path)[0] == pytest.approx(expected)
    _set_tr(path, 2.0, "unknown")
    assert header_repetition_time(path) == (None, "pixdim[4] = 2 unknown")


@pytest.mark.slow
@pytest.mark.parametrize("value", ['"abc"', "0", "-2", "true", "null"])
def test_a_repetition_time_that_is_no_positive_number_names_its_sidecar(small_copy, capsys, value):
    sidecar = small_copy / "bids" / "task-5000scenes_bold.json"
    sidecar.write_text(f'{{"TaskName": "5000scenes", "RepetitionTime": {value}}}')
    code, out = _run(small_copy)
    assert code == EXIT_VALIDATION
    line = _error_line(capsys.readouterr().err)
    assert line.startswith(f"bids_taskenc: error: {sidecar}: RepetitionTime ") and "StartTime" not in line, line
    assert "not a positive number of seconds" in line and not out.exists()


@pytest.mark.slow
def test_an_events_file_edited_keeping_size_and_time_is_not_served_stale(small_copy):
    code, _ = _run(small_copy)
    assert code == 0
    entries = small_copy / "work" / "cache" / "responses"
    assert len(list(entries.iterdir())) == 1
    events = _events(small_copy)
    st = events.stat()
    table = pd.read_csv(events, sep="\t", dtype=str, keep_default_na=False)
    same_length = table["stim_file"].str.len()
    i, j = next((a, b) for a in range(len(table)) for b in range(a + 1, len(table)) if same_length[a] == same_length[b])
    for col in ("ImgName", "stim_file"):  # two trials' images swapped: same bytes count, other responses
        table.loc[[i, j], col] = table.loc[[j, i], col].to_numpy()
    with open(events, "r+") as fh:  # in place (same inode), as an editor or rsync --inplace writes
        fh.write(table.to_csv(sep="\t", index=False, lineterminator="\n"))
    os.utime(events, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert events.stat().st_size == st.st_size and events.stat().st_mtime_ns == st.st_mtime_ns
    code, _ = _run(small_copy)
    assert code == 0
    assert len(list(entries.iterdir())) == 2, "the edited events were served from the work cache"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["complex", "no-columns", "no-rows"])
def test_feature_matrices_that_are_not_real_features_are_refused(small_copy, capsys, kind):
    npy = small_copy / "bids" / "derivatives" / "features" / "scene3da" / "features.npy"
    feats = np.load(npy)
    bad = {"complex": feats + 1j * feats, "no-columns": feats[:, :0], "no-rows": feats[:0]}[kind]
    np.save(npy, bad)
    code, out = _run(small_copy)
    assert code == EXIT_FAILURE  # there, but not features: 1 (bids_taskenc.errors.EXIT_CODES; 66 is a missing file)
    line = _error_line(capsys.readouterr().err)
    assert str(npy) in line and ("complex" in line if kind == "complex" else "has shape" in line), line
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize("text", ["[1, 2]", '"3D"', '{"group": 3}', '{"description": ["x"]}', "\xff\xfe{", "[" * 5000])
def test_a_space_json_that_is_no_description_object_names_the_file(small_copy, capsys, text):
    meta = small_copy / "bids" / "derivatives" / "features" / "scene3da" / "space.json"
    meta.write_bytes(text.encode("latin-1"))
    code, out = _run(small_copy)
    assert code == EXIT_FAILURE  # there, but not a description: 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and str(meta) in _error_line(err)
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    "content,words",
    [(b"seed = 1\n# caf\xe9\n", "not UTF-8 text (byte 0xe9"), (b"alphas = " + b"[" * 3000 + b"]" * 3000, "nests")],
)
def test_config_and_filter_files_that_cannot_be_read_are_usage_errors(small_copy, tmp_path, capsys, content, words):
    cfg = tmp_path / "cfg.toml"
    cfg.write_bytes(content)
    code, out = _run(small_copy, "--config", cfg)
    assert code == EXIT_USAGE
    line = _error_line(capsys.readouterr().err)
    assert line.startswith(f"bids_taskenc: error: {cfg}: --config file ") and words in line, line
    filters = tmp_path / "filter.json"
    filters.write_bytes(content.replace(b"seed = 1", b"{}").replace(b"alphas = ", b""))
    code, out = _run(small_copy, "--bids-filter-file", filters)
    assert code == EXIT_USAGE
    assert _error_line(capsys.readouterr().err).startswith(f"bids_taskenc: error: {filters}: --bids-filter-file ")
    assert not out.exists()


@pytest.mark.slow
def test_an_all_zero_run_is_named_itself(small_copy, capsys):
    bolds = sorted(_fmriprep_func(small_copy).glob("*_desc-preproc_bold.nii.gz"))
    img = nib.load(bolds[1])
    nib.save(nib.Nifti1Image(np.zeros(img.shape, np.float32), img.affine, img.header), bolds[1])
    code, out = _run(small_copy)
    assert code == EXIT_FAILURE
    line = _error_line(capsys.readouterr().err)
    assert str(bolds[1]) in line and str(bolds[0]) not in line and "constant" in line, line


def _responses_spy(monkeypatch):
    from bids_taskenc.responses import travg  # what the registry's travg entry calls

    calls = []
    real = travg.tr_average_responses

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(travg, "tr_average_responses", spy)
    return calls


@pytest.mark.slow
def test_a_read_only_work_folder_is_refused_before_any_work(small_copy, capsys, monkeypatch):
    work = small_copy / "work"
    work.mkdir()
    real_open, real_mkdir = os.open, os.mkdir

    def read_only(real):  # a read-only mount: even root cannot write there
        def call(path, *args, **kwargs):
            if str(path).startswith(str(work)):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
            return real(path, *args, **kwargs)

        return call

    monkeypatch.setattr(os, "open", read_only(real_open))
    monkeypatch.setattr(os, "mkdir", read_only(real_mkdir))
    calls = _responses_spy(monkeypatch)
    code, out = _run(small_copy)
    assert code == EXIT_USAGE and not calls, "the responses were computed for a work folder that takes nothing"
    line = _error_line(capsys.readouterr().err)
    assert f"{work}: --work-dir is not writable (Read-only file system)" in line, line


@pytest.mark.slow
@pytest.mark.parametrize("option", [("--mem", "1050M"), ("--mem-gb", "1.05"), ("--mem=1050",)])
def test_a_memory_ceiling_too_small_is_refused_before_any_work_naming_the_flag_typed(
    small_copy, capsys, monkeypatch, option
):
    from bids_taskenc.workflow import resources

    monkeypatch.setattr(resources, "rss_bytes", lambda: 10**9)  # the process holds 1 GB: the fit's 5% do not fit
    calls = _responses_spy(monkeypatch)
    code, out = _run(small_copy, *option)
    assert code == EXIT_USAGE and not calls, "the responses were computed before the ceiling was found too small"
    line = _error_line(capsys.readouterr().err)
    typed = " ".join(option).replace("=", " ")
    assert f"error: {typed}: sub-CSI1 task-5000scenes needs about" in line and "1.000 GB" in line, line
    assert derivatives_under(out) == []


_KILLED_WHILE_CACHING = """
import os, signal, sys
from bids_taskenc.workflow import cache
real = cache.write_npy
def write_then_sigterm(*args, **kwargs):  # SLURM's time limit, while a work-cache entry is half written
    real(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGTERM)
cache.write_npy = write_then_sigterm
from bids_taskenc.cli.run import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_sigterm_cleans_up_like_ctrl_c(small_copy):
    import subprocess
    import sys

    import bids_taskenc

    bids = small_copy / "bids"
    out, work = small_copy / "out", small_copy / "work"
    argv = [bids, out, "participant", "--features-dir", bids / "derivatives" / "features", "--work-dir", work, *FAST]
    env = {**os.environ, "PYTHONPATH": str(Path(bids_taskenc.__file__).parents[1]), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", _KILLED_WHILE_CACHING, *map(str, argv)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 143, done.stderr[-2000:]
    assert "bids_taskenc: terminated by SIGTERM" in done.stderr and "Traceback" not in done.stderr
    left = [p for p in work.rglob(".*")] + [p for p in out.glob(".*")]
    assert left == [], f"temporary folders left behind: {left}"
    assert not (out / "sub-CSI1").exists()


def test_a_cache_entry_nested_too_deep_is_recomputed(tmp_path, caplog):
    cache = WorkCache(tmp_path)
    cache.get_or_compute("kind", {"a": 1}, lambda: {"n": 1})
    entry = cache.entry("kind", {"a": 1}) / "entry.json"
    entry.write_text('{"format": 2, "value": ' + "[" * 100000 + "]" * 100000 + "}")
    assert cache.get_or_compute("kind", {"a": 1}, lambda: {"n": 2}) == {"n": 2}
    assert "unusable work-cache entry" in caplog.text


def test_sighup_and_sigterm_raise_terminated_inside_the_run_only():
    import signal

    from bids_taskenc.cli.signals import Terminated, terminating_like_interrupt

    before = signal.getsignal(signal.SIGHUP)
    with pytest.raises(Terminated) as stopped, terminating_like_interrupt():
        os.kill(os.getpid(), signal.SIGHUP)
    assert stopped.value.exit_code == 129 and isinstance(stopped.value, KeyboardInterrupt)
    assert signal.getsignal(signal.SIGHUP) == before and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


@pytest.mark.parametrize(
    "row,words", [("5\t-1\ta.jpg", "'duration' -1 on line 3"), ("inf\t1\ta.jpg", "'onset' inf on line 3")]
)
def test_negative_durations_and_infinite_onsets_name_their_line(tmp_path, row, words):
    from bids_taskenc.bids.trials import read_events
    from bids_taskenc.errors import InputDataError

    events = tmp_path / "events.tsv"
    events.write_text(f"onset\tduration\tstim_file\n0\t1\tb.jpg\n{row}\n")
    with pytest.raises(InputDataError, match=words) as err:
        read_events(_run_files(events))
    assert str(events) in str(err.value)


@pytest.mark.slow
def test_an_undecodable_sidecar_is_named_not_just_the_dataset(small_copy, capsys):
    sidecar = small_copy / "bids" / "task-5000scenes_bold.json"
    sidecar.write_bytes(b'{"TaskName": "5000scenes", "RepetitionTime": 2, "Note": "caf\xe9"}')
    code, out = _run(small_copy)
    assert code == EXIT_VALIDATION
    line = _error_line(capsys.readouterr().err)
    assert line.startswith(f"bids_taskenc: error: {sidecar}: JSON sidecar is not UTF-8 text (byte 0xe9"), line
    assert not out.exists()
