"""Bad inputs give one clear GroupInputError line naming the folder or file."""

from __future__ import annotations

import json

import pytest
from group_synthetic import LABELS, TASK, run_group, write_participant

from bids_taskenc.group import GroupInputError
from bids_taskenc.outputs.naming import derivative_path, sidecar_path

QUICK = dict(n_bootstrap=0, n_permutations=0, offline=True, allow_one_participant=True)  # some cases have one


def _run(root, tmp_path, **kw):
    return run_group(root, **{**QUICK, **kw})


def test_group_input_error_is_value_error():
    assert issubclass(GroupInputError, ValueError)


def test_missing_folder(tmp_path):
    with pytest.raises(GroupInputError, match="does not exist"):
        _run(tmp_path / "nope", tmp_path)


def test_no_participant_outputs(tmp_path):
    (tmp_path / "out" / "sub-CSI1" / "func").mkdir(parents=True)
    with pytest.raises(GroupInputError, match=r"no participant outputs .* in .*out") as info:
        _run(tmp_path / "out", tmp_path)
    assert "\n" not in str(info.value)


def test_several_tasks_need_a_choice(tmp_path):
    root = tmp_path / "out"
    write_participant(root, "CSI1", labels=LABELS[:3])
    write_participant(root, "CSI1", task="other", labels=LABELS[:3])
    with pytest.raises(GroupInputError, match=r"several tasks .*5000scenes, other.*task="):
        _run(root, tmp_path)
    summary = _run(root, tmp_path, task="task-other")
    assert summary.task == "other"
    with pytest.raises(GroupInputError, match="task 'missing' not found"):
        _run(root, tmp_path, task="missing")


def test_unknown_participant(outputs, tmp_path):
    with pytest.raises(GroupInputError, match="sub-CSI9"):
        _run(outputs, tmp_path, participants=["CSI1", "sub-CSI9"])
    summary = _run(outputs, tmp_path, participants=["sub-CSI2", "CSI1"])
    assert summary.participants == ["CSI1", "CSI2"]


def test_missing_mask_names_the_file(tmp_path):
    root = tmp_path / "out"
    write_participant(root, "CSI1", labels=LABELS[:3], write_mask=False)
    with pytest.raises(
        GroupInputError, match=r"sub-CSI1_task-5000scenes_space-T1w_desc-brain_mask\.nii\.gz is missing"
    ):
        _run(root, tmp_path)


def test_missing_q_map_only_matters_when_thresholding(tmp_path):
    root = tmp_path / "out"
    write_participant(root, "CSI1", labels=LABELS[:3], write_q=False)
    with pytest.raises(GroupInputError, match=r"stat-q_statmap\.nii\.gz is missing"):
        _run(root, tmp_path)
    assert _run(root, tmp_path, thresholded=False).labels == LABELS[:3]


def test_missing_fdr_level(tmp_path):
    root = tmp_path / "out"
    write_participant(root, "CSI1", labels=LABELS[:3])
    r_path = derivative_path(
        root, sub="CSI1", task=TASK, space="T1w", desc=LABELS[0], stat="r", suffix="statmap", extension=".nii.gz"
    )
    side = json.loads(sidecar_path(r_path).read_text())
    del side["FDRLevel"]
    sidecar_path(r_path).write_text(json.dumps(side))
    with pytest.raises(GroupInputError, match="no FDRLevel"):
        _run(root, tmp_path)
    assert _run(root, tmp_path, fdr_alpha=0.05).labels == LABELS[:3]


def test_different_feature_spaces_use_the_intersection(tmp_path, logged):
    root = tmp_path / "out"
    write_participant(root, "CSI1", labels=LABELS[:5], seed=1)
    write_participant(root, "CSI2", labels=LABELS[1:6], seed=2)
    summary = run_group(root, **QUICK)
    assert summary.labels == LABELS[1:5]
    assert any("sub-CSI1" in m and LABELS[0] in m for m in logged())
    assert any("sub-CSI2" in m and LABELS[5] in m for m in logged())


def test_too_few_shared_feature_spaces(tmp_path):
    root = tmp_path / "out"
    write_participant(root, "CSI1", labels=LABELS[:2], seed=1)
    write_participant(root, "CSI2", labels=LABELS[1:3], seed=2)
    with pytest.raises(GroupInputError, match="fewer than 2 feature spaces shared"):
        _run(root, tmp_path)


def test_several_spaces_need_a_choice(tmp_path):
    root = tmp_path / "out"
    write_participant(root, "CSI1", labels=LABELS[:3])
    write_participant(root, "CSI1", space="MNI152NLin2009cAsym", labels=LABELS[:3])
    write_participant(root, "CSI2", labels=LABELS[:3])
    write_participant(root, "CSI2", space="MNI152NLin2009cAsym", labels=LABELS[:3])
    with pytest.raises(GroupInputError, match="several spaces .*space="):
        _run(root, tmp_path)
    summary = _run(root, tmp_path, space="MNI152NLin2009cAsym")
    assert summary.group_maps


def test_mismatched_map_shape(tmp_path):
    import nibabel as nib
    import numpy as np

    root = tmp_path / "out"
    write_participant(root, "CSI1", labels=LABELS[:3])
    bad = derivative_path(
        root, sub="CSI1", task=TASK, space="T1w", desc=LABELS[1], stat="r", suffix="statmap", extension=".nii.gz"
    )
    nib.save(nib.Nifti1Image(np.zeros((5, 5, 5), np.float32), np.eye(4)), bad)
    with pytest.raises(GroupInputError, match=rf"{bad.name} has shape"):
        _run(root, tmp_path)


def test_bad_reference_file(outputs, tmp_path):
    path = tmp_path / "aff.csv"
    path.write_text("x,y\n1,2\n")
    with pytest.raises(GroupInputError, match="aff.csv"):
        _run(outputs, tmp_path, reference_affinities=path)


def test_reference_with_too_few_shared_tasks(outputs, tmp_path, logged):
    path = tmp_path / "aff.tsv"
    path.write_text("source\ttarget\taffinity\nrgb2depth\trgb2sfnorm\t0.3\nrgb2sfnorm\trgb2depth\t0.2\n")
    summary = run_group(outputs, reference_affinities=path, **QUICK)
    assert summary.comparison is None
    assert sum("2 task(s) shared" in m for m in logged()) == 1
