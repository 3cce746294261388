"""End-to-end group runs on synthetic participant outputs with planted clusters."""

from __future__ import annotations

import json
import logging

import networkx as nx
import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from group_synthetic import CLUSTER_OF, CLUSTERS, LABELS, TASK, run_group, write_participant

from bids_taskenc.outputs.naming import derivative_path, sidecar_path

FAST = dict(n_bootstrap=100, n_permutations=999, offline=True)


def _matrix(path):
    table = pd.read_csv(path, sep="\t")
    assert list(table.columns) == ["task"] + list(table["task"])
    return table.set_index("task")


@pytest.fixture
def result(outputs, affinity_file, tmp_path):
    summary = run_group(
        outputs,
        reference_affinities=affinity_file(),
        command_line="bids_taskenc bids out group",
        **FAST,
    )
    return outputs, summary


def test_per_participant_and_average_matrices(result):
    root, summary = result
    assert summary.participants == ["CSI1", "CSI2", "CSI3"]
    assert summary.labels == LABELS
    mats = []
    for p in summary.participants:
        path = derivative_path(root, sub=p, task=TASK, desc="similarity", suffix="matrix", extension=".tsv")
        assert path.exists() and sidecar_path(path).exists()
        m = _matrix(path)
        assert list(m.index) == LABELS
        mats.append(m.to_numpy())
    for m in mats:
        np.testing.assert_allclose(m, m.T, atol=1e-6)
        np.testing.assert_allclose(np.diag(m), 1.0)
    avg = _matrix(derivative_path(root, task=TASK, desc="similarity", suffix="matrix", extension=".tsv")).to_numpy()
    np.testing.assert_allclose(avg, np.mean(mats, axis=0), atol=1e-5)
    same = np.array([[CLUSTER_OF[a] == CLUSTER_OF[b] for b in LABELS] for a in LABELS])
    off = ~np.eye(len(LABELS), dtype=bool)
    assert avg[same & off].min() > 0.4
    assert avg[~same].max() < 0.2
    side = json.loads(
        sidecar_path(derivative_path(root, task=TASK, desc="similarity", suffix="matrix", extension=".tsv")).read_text()
    )
    assert side["Participants"] == ["CSI1", "CSI2", "CSI3"]
    assert side["Settings"]["Seed"] == 0
    assert side["CommandLine"] == "bids_taskenc bids out group"
    assert "numpy" in side["SoftwareVersions"]
    assert any(i.endswith("_stat-q_statmap.nii.gz") for i in side["Inputs"])


def test_tree_recovers_clusters_with_high_support(result):
    root, _ = result
    doc = json.loads(derivative_path(root, task=TASK, desc="tree", suffix="dendrogram", extension=".json").read_text())
    clades = {}

    def walk(node):
        if "children" in node:
            clades[frozenset(node["leaves"])] = node["support"]
            for child in node["children"]:
                walk(child)
        else:
            assert node["group"] == CLUSTER_OF[node["name"]]
            assert node["feature_space"].startswith("taskonomy:")

    walk(doc["Tree"])
    assert sorted(doc["LeafOrder"]) == LABELS
    for members in CLUSTERS.values():
        assert frozenset(members) in clades, f"cluster {sorted(members)} is not a clade"
        assert clades[frozenset(members)] >= 0.9
    # leaves of a cluster are contiguous in the leaf order
    groups = [CLUSTER_OF[label] for label in doc["LeafOrder"]]
    assert sum(a != b for a, b in zip(groups, groups[1:])) == 2
    table = pd.read_csv(derivative_path(root, task=TASK, desc="tree", suffix="clades", extension=".tsv"), sep="\t")
    assert len(table) == len(LABELS) - 1
    nwk = derivative_path(root, task=TASK, desc="tree", suffix="dendrogram", extension=".nwk").read_text().strip()
    assert nwk.endswith(";") and nwk.count("(") == nwk.count(")") == len(LABELS) - 1
    for label in LABELS:
        assert f"{label}:" in nwk


def test_graph_roundtrip(result):
    root, _ = result
    graph = nx.read_graphml(derivative_path(root, task=TASK, desc="graph", suffix="edges", extension=".graphml"))
    assert sorted(graph.nodes) == LABELS
    assert graph.number_of_edges() == len(LABELS) * (len(LABELS) - 1) // 2
    avg = _matrix(derivative_path(root, task=TASK, desc="similarity", suffix="matrix", extension=".tsv"))
    for a, b, w in graph.edges(data="weight"):
        assert w == pytest.approx(avg.loc[a, b], abs=1e-5)
    assert graph.nodes["normal"]["group"] == "3D"
    edges = pd.read_csv(derivative_path(root, task=TASK, desc="graph", suffix="edges", extension=".tsv"), sep="\t")
    assert list(edges.columns) == ["source", "target", "weight"]
    topk = pd.read_csv(derivative_path(root, task=TASK, desc="graph", suffix="topk", extension=".tsv"), sep="\t")
    assert len(topk) == 3 * len(LABELS)
    for row in topk[topk["rank"] == 1].itertuples():
        assert CLUSTER_OF[row.task] == CLUSTER_OF[row.neighbor]


def test_consistency_significant(result):
    root, summary = result
    cons = summary.consistency.summary()
    assert cons["mean_spearman"] > 0.5
    assert cons["p"] < 0.01
    table = pd.read_csv(
        derivative_path(root, task=TASK, desc="consistency", suffix="stats", extension=".tsv"), sep="\t"
    )
    assert len(table) == 3


def test_planted_reference_detected(result):
    root, summary = result
    comp = summary.comparison.summary if summary.comparison is not None else None
    assert comp is not None and comp["n_tasks"] == len(LABELS)
    assert comp["spearman"] > 0.5
    assert comp["p_mantel"] < 0.05
    # the clusters differ in size (4, 5, 3 tasks), which gives them per-task main effects too: the partial
    # test must keep the pairwise agreement (removing each matrix's own row effects did not: p = 0.38)
    assert comp["partial_correlation"] > 0.5 and comp["p_mantel_partial"] < 0.05
    assert comp["cophenetic_correlation"] > 0.5
    doc = json.loads(
        derivative_path(root, task=TASK, desc="taskonomy", suffix="comparison", extension=".json").read_text()
    )
    assert doc["PValueMantel"] == comp["p_mantel"] and doc["PValueMantelPartial"] == comp["p_mantel_partial"]
    assert "chance similarity" in doc["PartialMethod"]
    # the partial test is the headline, the plain one secondary and explained (issue 23 part 6)
    keys = list(doc)
    assert doc["HeadlineTest"].startswith("partial Mantel")
    assert keys.index("PValueMantelPartial") < keys.index("PValueMantel")
    assert "secondary" in doc["PlainMantelNote"] and "99-100 %" in doc["PlainMantelNote"]
    pairs = pd.read_csv(
        derivative_path(root, task=TASK, desc="taskonomy", suffix="comparison", extension=".tsv"), sep="\t"
    )
    assert len(pairs) == len(LABELS) * (len(LABELS) - 1) // 2
    assert np.all(np.diff(np.abs(pairs["rank_difference"])) >= 0)
    assert derivative_path(root, task=TASK, desc="taskonomysimilarity", suffix="matrix", extension=".tsv").exists()
    assert derivative_path(root, task=TASK, desc="taskonomytree", suffix="dendrogram", extension=".nwk").exists()


def test_shuffled_reference_not_detected(outputs, affinity_file):
    summary = run_group(outputs, reference_affinities=affinity_file(shuffle_seed=5), **FAST)
    assert summary.comparison.summary["p_mantel"] > 0.05
    assert summary.comparison.summary["p_mantel_partial"] > 0.05


def test_offline_run_compares_with_the_bundled_taskonomy_table(outputs, logged):
    """No network and no cache: the comparison uses the affinities the package ships (it was skipped before)."""
    summary = run_group(outputs, offline=True, n_bootstrap=0, n_permutations=99)
    assert summary.comparison is not None and not [m for m in logged() if "comparison skipped" in m]
    comparison = json.loads(
        derivative_path(outputs, task=TASK, desc="taskonomy", suffix="comparison", extension=".json").read_text()
    )
    assert comparison["Reference"]["Source"] == "bids_taskenc package data taskonomy_affinities_default.tsv"
    assert "MIT" in comparison["Reference"]["License"]


def test_unreadable_bundled_reference_is_a_warning_and_the_rest_is_written(outputs, tmp_path, monkeypatch, caplog):
    from bids_taskenc.group import reference as ref

    monkeypatch.setattr(ref, "BUNDLED_DIR", tmp_path / "nothing")
    caplog.set_level(logging.INFO, logger="bids_taskenc")
    summary = run_group(outputs, offline=True, n_bootstrap=20, n_permutations=99)
    skips = [r for r in caplog.records if "Taskonomy comparison skipped" in r.getMessage()]
    assert len(skips) == 1 and skips[0].levelno == logging.WARNING and "missing" in skips[0].getMessage()
    assert skips[0].getMessage() in summary.messages
    assert summary.comparison is None
    assert derivative_path(outputs, task=TASK, desc="tree", suffix="dendrogram", extension=".json").exists()
    assert not derivative_path(outputs, task=TASK, desc="taskonomy", suffix="comparison", extension=".json").exists()


def test_seeded_bootstrap_is_reproducible(outputs):
    path = derivative_path(outputs, task=TASK, desc="tree", suffix="clades", extension=".tsv")
    run_group(outputs, n_bootstrap=30, n_permutations=99, offline=True, seed=3)
    first = path.read_text()
    run_group(outputs, n_bootstrap=30, n_permutations=99, offline=True, seed=3)
    assert path.read_text() == first


def test_threshold_changes_similarity(tmp_path):
    """Two maps that only overlap where q is above the level: similar unthresholded, not thresholded."""
    root = tmp_path / "out"
    write_participant(root, "CSI1", labels=["edgetexture", "normal", "classobject"], seed=1)
    # make 'normal' equal to 'edgetexture' but with q = 0.5 everywhere
    for stat in ("r", "q"):
        src = derivative_path(
            root,
            sub="CSI1",
            task=TASK,
            space="T1w",
            desc="edgetexture",
            stat=stat,
            suffix="statmap",
            extension=".nii.gz",
        )
        dst = derivative_path(
            root, sub="CSI1", task=TASK, space="T1w", desc="normal", stat=stat, suffix="statmap", extension=".nii.gz"
        )
        img = nib.load(src)
        data = np.asarray(img.dataobj)
        if stat == "q":
            data = np.full_like(data, 0.5)
        nib.save(nib.Nifti1Image(data, img.affine), dst)
    common = dict(n_bootstrap=0, n_permutations=0, offline=True, allow_one_participant=True)
    path = derivative_path(root, task=TASK, desc="similarity", suffix="matrix", extension=".tsv")
    run_group(root, **common)
    assert _matrix(path).loc["edgetexture", "normal"] == 0.0
    run_group(root, thresholded=False, **common)
    assert _matrix(path).loc["edgetexture", "normal"] == pytest.approx(1.0, abs=1e-5)
    # a looser level from the caller keeps the voxels
    run_group(root, fdr_alpha=0.6, **common)
    assert _matrix(path).loc["edgetexture", "normal"] > 0.9


def test_roi_matrices(outputs, tmp_path):
    """ROI masks found in --roi-dir, one file per hemisphere, pooled; brought to each participant's grid."""
    roi_dir = tmp_path / "rois"
    roi_dir.mkdir()
    roi = np.zeros((10, 10, 10), dtype=np.uint8)
    roi[1:6] = 1
    for p in ("CSI1", "CSI2", "CSI3"):
        left, right = roi.copy(), roi.copy()
        left[:, 5:] = right[:, :5] = 0  # the two hemispheres' halves of the ROI
        nib.save(nib.Nifti1Image(left, np.diag([2.0, 2.0, 2.0, 1.0])), roi_dir / f"sub-{p}_mask-LHPPA.nii.gz")
        nib.save(nib.Nifti1Image(right, np.diag([2.0, 2.0, 2.0, 1.0])), roi_dir / f"sub-{p}_mask-RHPPA.nii.gz")
    summary = run_group(outputs, roi_dir=roi_dir, n_bootstrap=0, n_permutations=0, offline=True)
    assert summary.roi_labels == ["PPA"]
    for p in ("CSI1", "CSI2", "CSI3"):
        path = derivative_path(
            outputs, sub=p, task=TASK, roi="PPA", desc="similarity", suffix="matrix", extension=".tsv"
        )
        assert path.exists()
        assert json.loads(sidecar_path(path).read_text())["NVoxels"] == 5 * 8 * 8
    group = _matrix(
        derivative_path(outputs, task=TASK, roi="PPA", desc="similarity", suffix="matrix", extension=".tsv")
    )
    whole = _matrix(derivative_path(outputs, task=TASK, desc="similarity", suffix="matrix", extension=".tsv"))
    assert not np.allclose(group.to_numpy(), whole.to_numpy())


def test_group_maps_in_template_space(tmp_path):
    root = tmp_path / "out"
    vols = [
        write_participant(root, p, space="MNI152NLin2009cAsym", seed=i) for i, p in enumerate(("CSI1", "CSI2", "CSI3"))
    ]
    summary = run_group(root, n_bootstrap=0, n_permutations=0, offline=True)
    assert summary.group_maps
    ents = dict(task=TASK, space="MNI152NLin2009cAsym", desc="normal", suffix="statmap", extension=".nii.gz")
    mean = np.asarray(nib.load(derivative_path(root, stat="meanr", **ents)).dataobj)
    expected = np.tanh(np.mean([np.arctanh(v["normal"]) for v in vols], axis=0))
    mask = np.zeros((10, 10, 10), dtype=bool)
    mask[1:-1, 1:-1, 1:-1] = True
    np.testing.assert_allclose(mean[mask], expected[mask], atol=1e-5)
    assert np.all(mean[~mask] == 0)
    for stat in ("t", "p", "q"):
        path = derivative_path(root, stat=stat, **ents)
        assert path.exists() and sidecar_path(path).exists()
    q = np.asarray(nib.load(derivative_path(root, stat="q", **ents)).dataobj)
    p = np.asarray(nib.load(derivative_path(root, stat="p", **ents)).dataobj)
    assert np.all(q[mask] >= p[mask] - 1e-7)
    assert derivative_path(
        root, task=TASK, space="MNI152NLin2009cAsym", desc="brain", suffix="mask", extension=".nii.gz"
    ).exists()


def test_no_group_maps_in_native_space(result):
    root, summary = result
    assert not summary.group_maps
    assert any("group maps skipped" in m and "T1w" in m for m in summary.messages)
    assert not list((root / "group").glob("*_statmap.nii.gz"))
