"""One FDR level for the whole group step (issue 12 §5) and which feature spaces and clades the tree shows (§2)."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from group_synthetic import LABELS, TASK, run_group, write_participant

from bids_taskenc.group import GroupInputError, tree
from bids_taskenc.outputs.naming import derivative_path, sidecar_path

QUICK = dict(n_bootstrap=20, n_permutations=0, offline=True, allow_one_participant=True)  # some cases have one


def _run(root, tmp_path, **kw):
    return run_group(root, **{**QUICK, **kw})


def _json(root, desc, suffix, **ents):
    return json.loads(derivative_path(root, task=TASK, desc=desc, suffix=suffix, extension=".json", **ents).read_text())


def _r_sidecar(root, participant, label, space="T1w"):
    return sidecar_path(
        derivative_path(
            root, sub=participant, task=TASK, space=space, desc=label, stat="r", suffix="statmap", extension=".nii.gz"
        )
    )


def test_level_from_the_sidecars_is_recorded_as_a_number(tmp_path):
    root = tmp_path / "out"
    for i, p in enumerate(("CSI1", "CSI2")):
        write_participant(root, p, labels=LABELS[:4], seed=i, fdr_level=0.01)
    summary = _run(root, tmp_path)
    for desc, suffix in (("similarity", "matrix"), ("tree", "dendrogram")):
        settings = _json(root, desc, suffix)["Settings"]
        assert settings["FDRLevel"] == 0.01 and "sidecars" in settings["FDRLevelSource"]
    assert summary.fdr_level == 0.01
    summary = _run(root, tmp_path, fdr_alpha=0.2)
    assert _json(root, "similarity", "matrix")["Settings"]["FDRLevel"] == 0.2
    assert _json(root, "similarity", "matrix")["Settings"]["FDRLevelSource"] == "--fdr-alpha"


def test_different_levels_in_the_sidecars_are_an_error_naming_both(tmp_path):
    root = tmp_path / "out"
    write_participant(root, "CSI1", labels=LABELS[:3], seed=1, fdr_level=0.05)
    write_participant(root, "CSI2", labels=LABELS[:3], seed=2, fdr_level=0.01)
    with pytest.raises(GroupInputError, match="different FDR levels") as info:
        _run(root, tmp_path)
    message = str(info.value)
    assert _r_sidecar(root, "CSI1", LABELS[0]).name in message and "0.05" in message
    assert _r_sidecar(root, "CSI2", LABELS[0]).name in message and "0.01" in message
    assert _run(root, tmp_path, fdr_alpha=0.05).fdr_level == 0.05


def test_group_maps_and_report_use_the_recorded_level(tmp_path):
    from bids_taskenc.report import write_group_report

    root = tmp_path / "out"
    for i, p in enumerate(("CSI1", "CSI2", "CSI3")):
        write_participant(root, p, labels=LABELS[:3], space="MNI152NLin2009cAsym", seed=i, fdr_level=0.5)
    _run(root, tmp_path, n_bootstrap=0)
    ents = dict(task=TASK, space="MNI152NLin2009cAsym", desc=LABELS[0], stat="q", suffix="statmap")
    q_path = derivative_path(root, extension=".nii.gz", **ents)
    q = np.asarray(nib.load(q_path).dataobj)
    mask = (
        np.asarray(
            nib.load(
                derivative_path(
                    root, task=TASK, space="MNI152NLin2009cAsym", desc="brain", suffix="mask", extension=".nii.gz"
                )
            ).dataobj
        )
        > 0
    )
    n_sig = int(np.sum(q[mask] < 0.5))
    assert n_sig != int(np.sum(q[mask] < 0.05))  # the level matters for this count
    html = write_group_report(root).read_text()
    assert f'{LABELS[0]}</td><td class="g-2D">2D</td>' in html
    row = html.split(f'<tr><td>{LABELS[0]}</td><td class="g-2D">')[-1].split("</tr>")[0]
    assert row.endswith(f"<td>{n_sig}</td>")
    assert "q &lt; 0.5" in html and "q &lt; 0.05" not in html
    assert json.loads(sidecar_path(q_path).read_text())["FDRLevel"] == 0.5
    from bids_taskenc.report.group import fdr_level

    assert fdr_level({"FDRLevel": "from each map's sidecar"}) is None and fdr_level({"FDRLevel": 0.01}) == 0.01


def _silence(root, participant, label):
    """Make every voxel of a feature space non-significant (q = 1)."""
    path = derivative_path(
        root, sub=participant, task=TASK, space="T1w", desc=label, stat="q", suffix="statmap", extension=".nii.gz"
    )
    img = nib.load(path)
    nib.save(nib.Nifti1Image(np.ones(img.shape, np.float32), img.affine), path)


def test_spaces_without_surviving_voxels_are_left_out_of_the_tree(outputs, affinity_file, tmp_path, logged):
    from bids_taskenc.report import write_group_report

    empty = ["classscene", "normal"]
    for p in ("CSI1", "CSI2", "CSI3"):
        for label in empty:
            _silence(outputs, p, label)
    _silence(outputs, "CSI1", "reshading")  # empty in one participant only: stays
    summary = _run(outputs, tmp_path, reference_affinities=affinity_file(), n_permutations=99)
    doc = _json(outputs, "tree", "dendrogram")
    assert doc["LinkageLeaves"] == [lab for lab in LABELS if lab not in empty]
    assert summary.excluded == empty
    assert sum("left out of the tree" in m and "classscene, normal" in m for m in logged()) == 1
    assert [e["FeatureLabel"] for e in doc["ExcludedFeatureSpaces"]] == empty
    assert all("q < 0.05 in any participant" in e["Reason"] for e in doc["ExcludedFeatureSpaces"])
    assert "reshading" in doc["LinkageLeaves"]
    clades = pd.read_csv(derivative_path(outputs, task=TASK, desc="tree", suffix="clades", extension=".tsv"), sep="\t")
    assert len(clades) == len(LABELS) - len(empty) - 1
    assert not clades["members"].str.contains("classscene|normal").any()
    nwk = derivative_path(outputs, task=TASK, desc="tree", suffix="dendrogram", extension=".nwk").read_text()
    assert "classscene" not in nwk and "normal:" not in nwk
    # still in the matrix (similarity 0), not in the Taskonomy comparison
    matrix = pd.read_csv(
        derivative_path(outputs, task=TASK, desc="similarity", suffix="matrix", extension=".tsv"), sep="\t"
    )
    assert "classscene" in matrix.columns
    comparison = _json(outputs, "taskonomy", "comparison")
    assert not set(empty) & set(comparison["SharedTasks"])
    assert summary.leaf_order[-2:] == empty
    html = write_group_report(outputs).read_text()
    assert "Left out of the tree and the Taskonomy comparison: classscene (no voxel with FDR q &lt; 0.05" in html


def test_tied_clades_get_no_support():
    # three groups that share nothing: distance 1 between every two; which two merge first is arbitrary
    s = np.eye(6)
    for a, b in ((0, 1), (2, 3), (4, 5)):
        s[a, b] = s[b, a] = 0.8
    z = tree.build_tree(s)
    support = tree.bootstrap_support(z, np.stack([s] * 5))
    assert np.isnan(support[3]) and np.all(support[[0, 1, 2, 4]] == 1.0)
    tied = tree.tied_clades(z)
    assert tied.tolist() == [False, False, False, True, False]
    nested = tree.to_nested(z, list("abcdef"), support=support)
    tied_nodes = [c for c in nested["children"] if "children" in c and c["tied"]]
    assert len(tied_nodes) == 1 and tied_nodes[0]["support"] is None
    rows = tree.clade_table(z, list("abcdef"), support)
    assert [r["tied"] for r in rows] == tied.tolist() and rows[3]["support"] is None


def test_no_tree_when_fewer_than_two_spaces_survive(tmp_path, logged):
    root = tmp_path / "out"
    write_participant(root, "CSI1", labels=LABELS[:3], seed=1)
    _run(root, tmp_path)
    path = derivative_path(root, task=TASK, desc="tree", suffix="dendrogram", extension=".json")
    assert path.exists()
    for label in LABELS[1:3]:
        _silence(root, "CSI1", label)
    summary = _run(root, tmp_path)
    assert summary.excluded == LABELS[1:3]
    assert any(m.startswith("no tree: fewer than 2") for m in logged())
    assert not path.exists()  # the previous run's tree is gone
