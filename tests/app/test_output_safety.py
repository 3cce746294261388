"""Inputs are never written, finished work is never dropped, and what must not run at once does not.

Issue 24: an output folder that was an input folder lost its data (``OUT = B/derivatives/fmriprep`` replaced
``fmriprep/sub-CSI1/``; ``OUT = B/derivatives/spm`` deleted the ROI masks; ``--work-dir B/work`` wrote into the raw
dataset); a rerun with other ``--feature-spaces`` deleted the earlier spaces' maps; the group level ran over one
participant, or while a participant was being rewritten; a group run killed between its two renames left no
``group/``. Every test checks the input tree's checksum before and after.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

import bids_taskenc
from bids_taskenc.errors import EXIT_FAILURE, EXIT_INPUT_MISSING, EXIT_USAGE

from .conftest import files_under, run_app, tree_digest

pytestmark = pytest.mark.slow  # every test here runs the app end to end

#: The checkout under test, for the child processes that are killed.
_SOURCE = str(Path(bids_taskenc.__file__).resolve().parents[1])
FAST = ("--contrast-bootstrap", "0", "--no-reports", "--cv-folds", "3")
TWO = ("--feature-spaces", "user:scene3da", "user:edge2da")


@pytest.fixture
def root(pair):
    """A private copy of the shared two-participant dataset (``conftest.pair``)."""
    return pair


def _participant(root, *extra, out=None, work=None, own_folders_in_dataset=False):
    """The participant level; the input tree (without the run's own folders, when they are meant to be in it)
    must come out as it went in."""
    bids = root / "bids"
    mine = [out or root / "out", work or root / "work"] if own_folders_in_dataset else []
    before = tree_digest(bids, mine)
    code = run_app(
        bids,
        out or root / "out",
        "participant",
        "--features-dir",
        bids / "derivatives" / "features",
        "--work-dir",
        work or root / "work",
        *FAST,
        *extra,
    )
    assert tree_digest(bids, mine) == before, "the run changed its input dataset"
    return code


def _group(root, *extra, out=None):
    bids = root / "bids"
    before = tree_digest(bids)
    code = run_app(
        bids, out or root / "out", "group", "--offline", "--n-bootstrap", "10", "--group-permutations", "20",
        "--no-reports", *extra,
    )  # fmt: skip
    assert tree_digest(bids) == before, "the group run changed its input dataset"
    return code


def _error(capfd) -> str:
    return next(ln for ln in capfd.readouterr().err.splitlines() if ln.startswith("bids_taskenc: error:"))


def _func(out, sub="CSI1"):
    return {p.name: p.read_bytes() for p in sorted((out / f"sub-{sub}" / "func").iterdir())}


# --- output and work folders never overlap an input ---------------------------------------------------------------


@pytest.mark.parametrize(
    "where,named",
    [
        ("bids/derivatives/fmriprep", "bids/derivatives/fmriprep"),
        ("bids/derivatives/fmriprep/sub-CSI1", "bids/derivatives/fmriprep"),
        ("bids/derivatives/spm", "bids/derivatives/spm"),
        ("bids/derivatives/features", "bids/derivatives/features"),
        ("bids/derivatives/features/scene3da", "bids/derivatives/features"),
        ("bids/derivatives", "bids"),
        ("bids/sub-CSI1", "bids"),
        ("bids", "bids"),
        (".", "bids"),
        ("masks", "masks/brain.nii.gz"),
    ],
)
def test_an_output_folder_that_is_an_input_is_refused_naming_both(root, capfd, where, named):
    (root / "masks").mkdir()
    mask = sorted((root / "bids/derivatives/fmriprep/sub-CSI1/ses-01/func").glob("*_desc-brain_mask.nii.gz"))[0]
    shutil.copy(mask, root / "masks" / "brain.nii.gz")
    out = (root / where).resolve()
    code = _participant(root, "--participant-label", "CSI1", *TWO, "--mask", root / "masks" / "brain.nii.gz", out=out)
    assert code == EXIT_USAGE
    line = _error(capfd)
    assert f"output_dir {out} " in line and str((root / named).resolve()) in line, line


@pytest.mark.parametrize("where", ["bids/work", "bids/derivatives/fmriprep", "bids/derivatives/spm/cache", "bids"])
def test_a_work_folder_inside_an_input_is_refused(root, capfd, where):
    work = root / where
    code = _participant(root, *TWO, work=work)
    assert code == EXIT_USAGE
    line = _error(capfd)
    assert f"--work-dir {work} " in line, line
    assert not (root / "out").exists()


@pytest.mark.parametrize("where", ["out", "out/sub-CSI1"])
def test_a_work_folder_that_is_or_lies_inside_the_output_is_refused(root, capfd, where):
    """The cache would land in the published derivatives, or in a participant folder swapped whole (review)."""
    code = _participant(root, *TWO, work=root / where)
    assert code == EXIT_USAGE
    assert "the output folder" in _error(capfd)


def test_a_refused_output_folder_gets_no_resource_monitor_file(root, capfd):
    """--resource-monitor wrote logs/resources-*.tsv into fMRIPrep's folder after refusing it (review); the
    input tree's digest around the run (in ``_participant``) catches any write."""
    code = _participant(root, *TWO, "--resource-monitor", out=root / "bids" / "derivatives" / "fmriprep")
    assert code == EXIT_USAGE


@pytest.mark.parametrize("where", ["bids/derivatives/fmriprep/db", "bids/sub-CSI1/db"])
def test_a_database_folder_inside_an_input_is_refused_before_indexing(root, capfd, where):
    """The pybids index was written into fMRIPrep's folder before the output check refused the run (review)."""
    code = _participant(root, *TWO, "--bids-database-dir", root / where)
    assert code == EXIT_USAGE
    assert f"--bids-database-dir {root / where}" in _error(capfd)


def test_outputs_and_work_inside_the_dataset_s_own_derivatives_folder_are_fine(root):
    out = root / "bids" / "derivatives" / "bids_taskenc"
    work = root / "bids/derivatives/work"
    assert _participant(root, "--participant-label", "CSI1", *TWO, out=out, work=work, own_folders_in_dataset=True) == 0
    assert (out / "sub-CSI1" / "func").is_dir()


def test_the_group_level_refuses_an_output_folder_that_is_the_roi_folder(root, capfd):
    assert _group(root, out=root / "bids" / "derivatives" / "spm") == EXIT_USAGE
    assert "--roi-dir folder" in _error(capfd)


def test_a_folder_of_another_pipeline_is_never_written(root, capfd):
    """Another pipeline's outputs outside the dataset: its description and participant folders are not ours."""
    other = root / "other_fmriprep"
    shutil.copytree(root / "bids/derivatives/fmriprep", other)
    (other / "dataset_description.json").write_text(
        json.dumps({"Name": "fMRIPrep", "DatasetType": "derivative", "GeneratedBy": [{"Name": "fMRIPrep"}]})
    )
    before = tree_digest(other)
    assert _participant(root, *TWO, out=other) == EXIT_USAGE
    line = _error(capfd)
    assert str(other / "dataset_description.json") in line and "fMRIPrep" in line, line
    (other / "dataset_description.json").unlink()
    before = tree_digest(other)
    assert _participant(root, *TWO, out=other) == EXIT_USAGE
    line = _error(capfd)
    assert str(other / "sub-CSI1") in line and "did not write" in line, line
    assert tree_digest(other) == before


def test_our_own_earlier_outputs_are_recognised(root):
    """Outputs written before the SharedSettings record (their sidecars name bids_taskenc) are ours to add to."""
    assert _participant(root, "--participant-label", "CSI1", "--feature-spaces", "user:scene3da") == 0
    for side in (root / "out/sub-CSI1/func").glob("*.json"):
        meta = json.loads(side.read_text())
        meta.pop("SharedSettings", None)
        side.write_text(json.dumps(meta))
    (root / "out" / "dataset_description.json").unlink()
    assert _participant(root, "--participant-label", "CSI1", "--feature-spaces", "user:edge2da") == 0
    labels = {p.name.split("_desc-")[1].split("_")[0] for p in (root / "out/sub-CSI1/func").glob("*_stat-r_*.nii.gz")}
    assert labels == {"scene3da", "edge2da"}


# --- a rerun adds and replaces what it computes ---------------------------------------------------------------


def test_a_rerun_with_other_spaces_keeps_the_earlier_maps(root):
    assert _participant(root, *TWO) == 0
    before = _func(root / "out")
    assert _participant(root, "--participant-label", "CSI1", "--feature-spaces", "user:scene3db") == 0
    after = _func(root / "out")
    kept = {k: v for k, v in before.items() if "_desc-scene3da_" in k or "_desc-edge2da_" in k}
    assert kept and all(after.get(k) == v for k, v in kept.items()), "the earlier spaces' maps changed"
    assert any("_desc-scene3db_stat-r_statmap" in k for k in after)
    roi = pd.read_csv(root / "out/sub-CSI1/func/sub-CSI1_task-5000scenes_desc-roi_scores.tsv", sep="\t")
    assert set(roi["feature_space"]) == {"scene3da", "edge2da", "scene3db"}
    assert len(roi) == 3 * len(roi[roi["feature_space"] == "scene3da"])
    assert _func(root / "out", "CSI2").keys() == {k.replace("CSI1", "CSI2") for k in before}
    side = json.loads((root / "out/sub-CSI1/func/sub-CSI1_task-5000scenes_desc-roi_scores.json").read_text())
    assert "p_mean_r" not in side["Columns"] and side["SharedSettings"]["--seed"] == 0
    from bids_taskenc.report import build_reports

    outcome = build_reports(root / "out", participants=["CSI1"], group=False)
    assert not outcome.failures
    page = (root / "out" / "sub-CSI1.html").read_text()
    assert all(label in page for label in ("scene3da", "edge2da", "scene3db"))
    assert "user:scene3da user:edge2da" in page and "--feature-spaces user:scene3db" in page  # both runs' commands


def test_a_rerun_of_one_space_replaces_all_of_its_files_and_only_them(root):
    assert _participant(root, *TWO, "--participant-label", "CSI1", "--save-weights") == 0
    before = _func(root / "out")
    assert any("_desc-edge2da_weights" in k for k in before)
    assert _participant(root, "--participant-label", "CSI1", "--feature-spaces", "user:edge2da") == 0
    after = _func(root / "out")
    assert not any("_desc-edge2da_weights" in k for k in after), "a file the new run of the space did not write"
    assert any("_desc-scene3da_weights" in k for k in after)
    scene = {k: v for k, v in before.items() if "_desc-scene3da_" in k}
    assert scene and all(after.get(k) == v for k, v in scene.items())


@pytest.mark.parametrize(
    "option,named",
    [
        (("--seed", "4"), "--seed 0 (this run: 4)"),
        (("--test-fraction", "0.25"), "--test-fraction 0.15 (this run: 0.25)"),
        (("--response-trs", "2", "3"), "--response-trs 3 4 (this run: 2 3)"),
        (("--fdr-alpha", "0.01"), "--fdr-alpha 0.05 (this run: 0.01)"),
    ],
)
def test_a_rerun_with_other_shared_settings_stops_naming_them(root, capfd, option, named):
    assert _participant(root, *TWO, "--participant-label", "CSI1") == 0
    before = tree_digest(root / "out" / "sub-CSI1")
    code = _participant(root, "--participant-label", "CSI1", "--feature-spaces", "user:scene3db", *option)
    assert code == EXIT_USAGE
    line = _error(capfd)
    assert named in line and "--replace-outputs" in line and "scene3da" in line, line
    assert tree_digest(root / "out" / "sub-CSI1") == before
    code = _participant(
        root, "--participant-label", "CSI1", "--feature-spaces", "user:scene3db", "--replace-outputs", *option
    )
    assert code == 0
    labels = {p.name.split("_desc-")[1].split("_")[0] for p in (root / "out/sub-CSI1/func").glob("*_stat-r_*.nii.gz")}
    assert labels == {"scene3db"}


def test_a_mask_is_a_shared_setting_by_content(root, capfd):
    func = root / "bids/derivatives/fmriprep/sub-CSI1/ses-01/func"
    mask = sorted(func.glob("*_desc-brain_mask.nii.gz"))[0]
    shutil.copy(mask, root / "m1.nii.gz")
    assert _participant(root, *TWO, "--participant-label", "CSI1", "--mask", root / "m1.nii.gz") == 0
    shutil.move(root / "m1.nii.gz", root / "moved.nii.gz")  # the same mask elsewhere: the same setting
    code = _participant(
        root, "--participant-label", "CSI1", "--feature-spaces", "user:random", "--mask", root / "moved.nii.gz"
    )
    assert code == 0
    code = _participant(root, "--participant-label", "CSI1", "--feature-spaces", "user:scene3db")  # no mask
    assert code == EXIT_USAGE and "--mask file sha256" in _error(capfd)


def test_changed_inputs_under_the_same_settings_are_not_mixed(root, capfd):
    assert _participant(root, *TWO, "--participant-label", "CSI1") == 0
    before = tree_digest(root / "out" / "sub-CSI1")
    events = sorted((root / "bids/sub-CSI1").rglob("*task-5000scenes*_events.tsv"))[0]
    table = pd.read_csv(events, sep="\t")
    table.drop(index=[0, 1]).to_csv(events, sep="\t", index=False)  # two trials fewer: another split
    code = _participant(root, "--participant-label", "CSI1", "--feature-spaces", "user:scene3db")
    assert code == EXIT_USAGE
    line = _error(capfd)
    assert "desc-split_stimuli.tsv" in line and "inputs changed" in line, line
    assert tree_digest(root / "out" / "sub-CSI1") == before


# --- the group level ----------------------------------------------------------------------------------------------


def test_one_participant_is_an_error_unless_allowed(root, capfd):
    assert _participant(root, *TWO, "user:random", "--participant-label", "CSI1") == 0
    assert _group(root) == EXIT_INPUT_MISSING
    line = _error(capfd)
    assert "sub-CSI1 only" in line and "--allow-one-participant" in line, line
    assert not (root / "out" / "group").exists()
    assert _group(root, "--allow-one-participant") == 0
    assert (root / "out" / "group").is_dir()


def test_the_group_refuses_maps_made_with_different_shared_settings(root, capfd):
    assert _participant(root, *TWO, "user:random", "--participant-label", "CSI1") == 0
    assert _participant(root, *TWO, "user:random", "--participant-label", "CSI2", "--test-fraction", "0.25") == 0
    assert _group(root) == EXIT_INPUT_MISSING
    line = _error(capfd)
    assert "--test-fraction 0.15 in" in line and "but 0.25 in" in line and "sub-CSI2" in line, line


# --- locks -----------------------------------------------------------------------------------------------------


def test_a_participant_being_run_blocks_its_second_run_and_the_group(root, capfd):
    from bids_taskenc.outputs.locks import participant_lock

    assert _participant(root, *TWO, "user:random") == 0
    out = root / "out"
    before = tree_digest(out / "sub-CSI2")
    with participant_lock(out, "CSI2"):
        assert _participant(root, "--participant-label", "CSI2", *TWO) == EXIT_FAILURE
        assert "sub-CSI2 is being run by another bids_taskenc process" in _error(capfd)
        assert _group(root) == EXIT_FAILURE
        line = _error(capfd)
        assert "sub-CSI2 is being run now" in line, line
    assert tree_digest(out / "sub-CSI2") == before
    assert not list(out.glob(".sub-*.lock")), "a finished run leaves no lock file"
    assert _group(root) == 0


def test_a_group_run_refuses_while_another_writes(root, capfd):
    from bids_taskenc.outputs.locks import output_lock

    assert _participant(root, *TWO, "user:random") == 0
    with output_lock(root / "out", exclusive=True, who="test"):
        assert _group(root) == EXIT_FAILURE
        assert "another bids_taskenc run is writing to" in _error(capfd)


def test_a_participant_waits_for_a_group_run_before_swapping_its_folder(root):
    import logging
    import threading

    from bids_taskenc.outputs.locks import output_lock

    assert _participant(root, *TWO, "user:random") == 0
    out = root / "out"
    before = _func(out)
    waiting = threading.Event()

    class Seen(logging.Handler):
        def emit(self, record):
            if "waiting for the group level" in record.getMessage():
                waiting.set()

    seen = Seen()
    logging.getLogger("bids_taskenc").addHandler(seen)
    codes = []
    try:
        with output_lock(out, exclusive=True, who="a group run"):
            rerun = ("--participant-label", "CSI1", "--feature-spaces", "user:scene3db")
            worker = threading.Thread(target=lambda: codes.append(_participant(root, *rerun)))
            worker.start()
            assert waiting.wait(timeout=300), "the participant did not wait for the group run"
            assert _func(out) == before, "the participant swapped its folder while the group run held the lock"
        worker.join(timeout=300)
    finally:
        logging.getLogger("bids_taskenc").removeHandler(seen)
    assert codes == [0] and any("_desc-scene3db_" in k for k in _func(out))


def test_a_killed_process_leaves_no_lock(tmp_path):
    from bids_taskenc.outputs.locks import busy_participants, participant_lock

    code = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from bids_taskenc.outputs.locks import participant_lock
        with participant_lock(Path({str(tmp_path)!r}), "CSI1"):
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": _SOURCE}, check=False)
    assert proc.returncode == -signal.SIGKILL
    assert (tmp_path / ".sub-CSI1.lock").exists() and busy_participants(tmp_path) == []
    with participant_lock(tmp_path, "CSI1"):
        assert busy_participants(tmp_path) == ["CSI1"]  # held now
    assert not (tmp_path / ".sub-CSI1.lock").exists()


# --- kill -9 while swapping ---------------------------------------------------------------------------------------


def _killed_group(root, where: str) -> int:
    """The group level in a child process that kills itself (SIGKILL) at ``where`` of the group commit."""
    argv = [str(root / "bids"), str(root / "out"), "group", "--offline", "--n-bootstrap", "10", "--seed", "9",
            "--group-permutations", "20", "--no-reports"]  # fmt: skip
    code = textwrap.dedent(
        f"""
        import os, signal, pathlib
        from bids_taskenc.cli.run import main
        where = {where!r}
        real_rename, real_replace = pathlib.Path.rename, os.replace
        def rename(self, target):
            if where == "rename" and self.name == "group":
                os.kill(os.getpid(), signal.SIGKILL)
            return real_rename(self, target)
        def replace(src, dst):
            if where == "matrix" and "_matrix." in str(dst) and "/.group." not in str(dst):
                os.kill(os.getpid(), signal.SIGKILL)
            return real_replace(src, dst)
        pathlib.Path.rename, os.replace = rename, replace
        main({argv!r})
        """
    )
    env = {**os.environ, "PYTHONPATH": _SOURCE, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", code], env=env, check=False, capture_output=True).returncode


def _group_outputs(out):
    group = {p.relative_to(out).as_posix(): p.read_bytes() for p in files_under(out / "group")}
    matrices = {p.relative_to(out).as_posix(): p for p in files_under(out) if "_matrix." in p.name and "sub-" in p.name}
    return group, matrices


@pytest.mark.parametrize("where", ["rename", "matrix"])
def test_a_group_run_killed_while_swapping_leaves_a_whole_group_folder(root, where):
    from bids_taskenc.group.staging import remove_stale

    assert _participant(root, *TWO, "user:random") == 0
    assert _group(root) == 0
    out = root / "out"
    old_group, old_matrices = _group_outputs(out)
    assert _killed_group(root, where) == -signal.SIGKILL
    group, _ = _group_outputs(out)
    assert group.keys() == old_group.keys(), "group/ is not a whole group folder after the kill"
    remove_stale(out)  # what the next group run does first: finish the killed commit
    group, matrices = _group_outputs(out)
    assert group.keys() == old_group.keys() and group != old_group  # the killed run's, complete
    command = json.loads((out / "group" / "task-5000scenes_desc-similarity_matrix.json").read_text())["CommandLine"]
    assert "--seed 9" in command and matrices.keys() == old_matrices.keys()
    for path in matrices.values():
        if path.suffix == ".json":
            assert json.loads(path.read_text())["CommandLine"] == command, f"{path.name} is of another group run"
    assert not list(out.glob(".group.*"))


def test_a_participant_killed_between_its_two_renames_is_restored(root):
    assert _participant(root, *TWO, "--participant-label", "CSI1") == 0
    out = root / "out"
    before = _func(out)
    trash = out / ".old-sub-CSI1.k1ll3d"
    trash.mkdir()
    (out / "sub-CSI1").rename(trash / "sub-CSI1")  # where a kill between the two renames left it
    assert _participant(root, "--participant-label", "CSI1", "--feature-spaces", "user:random") == 0
    after = _func(out)
    assert all(after.get(k) == v for k, v in before.items() if "_desc-scene3da_" in k)
    assert not trash.exists()


def test_outputs_combining_spaces_are_kept_unless_a_space_they_used_is_replaced(root, capfd):
    vp = ("--variance-partitioning", "user:scene3da", "user:edge2da")
    assert _participant(root, "--participant-label", "CSI1", *TWO, *vp) == 0
    func = root / "out" / "sub-CSI1" / "func"
    table = func / "sub-CSI1_task-5000scenes_desc-partitioningroi_scores.tsv"
    partition = sorted(p.name for p in func.glob("*_desc-vp*"))
    assert partition and table.exists()
    rows = table.read_bytes()
    assert _participant(root, "--participant-label", "CSI1", "--feature-spaces", "user:scene3db") == 0
    assert sorted(p.name for p in func.glob("*_desc-vp*")) == partition and table.read_bytes() == rows
    assert _participant(root, "--participant-label", "CSI1", "--feature-spaces", "user:edge2da") == 0  # the same maps
    assert sorted(p.name for p in func.glob("*_desc-vp*")) == partition and table.read_bytes() == rows
    vp2 = ("--variance-partitioning", "user:scene3db", "user:edge2da")
    assert (
        _participant(root, "--participant-label", "CSI1", "--feature-spaces", "user:scene3db", "user:edge2da", *vp2)
        == 0
    )
    assert set(partition) < {p.name for p in func.glob("*_desc-vp*")}
    assert pd.read_csv(table, sep="\t")["partitioning"].nunique() == 2, "the earlier partitioning's rows were lost"
    partition = sorted(p.name for p in func.glob("*_desc-vp*"))
    capfd.readouterr()
    code = _participant(root, "--participant-label", "CSI1", "--feature-spaces", "user:edge2da", "--alphas", "1e6")
    assert code == 0  # other maps of edge2da: the partitioning computed from the earlier ones is stale
    warning = next(ln for ln in capfd.readouterr().err.splitlines() if "combining spaces" in ln)
    assert partition[0] in warning, warning
    assert not list(func.glob("*_desc-vp*")) and not table.exists()
    labels = {p.name.split("_desc-")[1].split("_")[0] for p in func.glob("*_stat-r_statmap.nii.gz")}
    assert labels == {"scene3da", "edge2da", "scene3db"}
