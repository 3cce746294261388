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

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from bids_taskenc.errors import EXIT_FAILURE, EXIT_INPUT_MISSING, EXIT_USAGE
from bids_taskenc.outputs.logs import crash_files, run_logs
from bids_taskenc.testing import make_synthetic_dataset
from bids_taskenc.workflow.cache import WorkCache

from .conftest import derivatives_under, files_under, run_app, tree_digest

FAST = ("--feature-spaces", "user:scene3da", "--contrast-bootstrap", "0", "--no-reports", "--cv-folds", "3")


@pytest.fixture(scope="session")
def pair_dataset(tmp_path_factory):
    """Two small participants (the second must go on when the first breaks)."""
    return make_synthetic_dataset(
        tmp_path_factory.mktemp("pair"),
        n_participants=2,
        n_sessions=1,
        runs_per_session=2,
        trials_per_run=16,
        n_repeated=2,
        shape=(10, 10, 8),
        seed=4,
    )


@pytest.fixture
def pair(pair_dataset, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(pair_dataset.bids_dir.parent, root, symlinks=True)
    return root


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


def test_stop_on_first_crash_leaves_the_rest_unprocessed(pair, capfd):
    _truncate(_bold(pair))
    code, out = _run(pair, "--stop-on-first-crash")
    err = capfd.readouterr().err
    assert code == EXIT_FAILURE
    assert "sub-CSI1: FAILED" in err and "not processed (--stop-on-first-crash): sub-CSI2" in err
    assert not (out / "sub-CSI2").exists()


def test_single_participant_input_error_keeps_its_exit_code_and_one_line(small_copy, capsys):
    _annex(_bold(small_copy))
    code, out = _run(small_copy)
    assert code == EXIT_INPUT_MISSING
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("bids_taskenc: error:")]
    assert len(lines) == 1 and "datalad get" in lines[0] and str(_bold(small_copy)) in lines[0]
    assert derivatives_under(out) == []


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


@pytest.mark.parametrize("option", [("--mem-gb", "-1"), ("--mem-gb", "0"), ("--seed", "-3"), ("--high-pass", "0")])
def test_out_of_range_numbers_are_usage_errors(small_copy, capsys, option):
    code, out = _run(small_copy, *option)
    assert code == EXIT_USAGE
    assert option[0] in capsys.readouterr().err
    assert not out.exists()


def test_missing_mask_file_is_66_naming_the_flag(small_copy, capsys):
    code, out = _run(small_copy, "--mask", small_copy / "nope.nii.gz")
    assert code == EXIT_INPUT_MISSING
    err = capsys.readouterr().err
    assert "--mask" in err and "nope.nii.gz" in err
    assert not out.exists()


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


def test_a_brain_mask_on_another_grid_is_an_error(small_copy, capsys):
    mask = sorted(_fmriprep_func(small_copy).glob("*_desc-brain_mask.nii.gz"))[0]
    nib.save(_shifted(nib.load(mask), shift_mm=30.0), mask)
    code, out = _run(small_copy)
    assert code == EXIT_FAILURE
    line = next(ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("bids_taskenc: error:"))
    assert str(mask) in line and "brain mask grid" in line and "origin" in line


def test_feature_spaces_with_one_bids_label_are_refused_before_anything(small_copy, capsys):
    features = small_copy / "bids" / "derivatives" / "features"
    shutil.copytree(features / "edge2da", features / "edge-2da")
    code, out = _run(small_copy, "--feature-spaces", "user:edge2da", "user:edge-2da")
    assert code == EXIT_USAGE
    err = capsys.readouterr().err
    assert "'user:edge2da'" in err and "'user:edge-2da'" in err and "edge2da" in err
    assert not out.exists()


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
