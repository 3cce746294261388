"""--variance-partitioning through the command line: sets resolved from groups, maps, ROI table, errors."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from bids_taskenc.outputs.naming import derivative_path, sidecar_path
from bids_taskenc.testing import make_synthetic_dataset
from bids_taskenc.workflow.partitioning import ROI_TABLE_DESC

from .conftest import run_app


@pytest.mark.slow
def test_group_sets_give_unique_maps_where_each_group_drives(tmp_path):
    ds = make_synthetic_dataset(
        tmp_path,
        n_participants=1,
        n_sessions=2,
        runs_per_session=3,
        trials_per_run=24,
        n_repeated=3,
        shape=(10, 10, 8),
        seed=11,
    )
    out = tmp_path / "out"
    code = run_app(
        ds.bids_dir,
        out,
        "participant",
        "--features-dir",
        ds.features_dir,
        "--work-dir",
        tmp_path / "work",
        "--feature-spaces",
        "scene3da",
        "scene3db",
        "edge2da",
        "--contrast-bootstrap",
        "0",
        "--cv-folds",
        "4",
        "--no-reports",
        "--variance-partitioning",
        "group:3D",
        "group:2D",
        "--variance-partitioning",
        "scene3da",
        "edge2da",
    )
    assert code == 0
    ents = dict(sub="CSI1", task="5000scenes", space="T1w")
    mask = (
        np.asarray(nib.load(derivative_path(out, **ents, desc="brain", suffix="mask", extension=".nii.gz")).dataobj) > 0
    )

    def load(desc, stat):
        path = derivative_path(out, **ents, desc=desc, stat=stat, suffix="statmap", extension=".nii.gz")
        return np.asarray(nib.load(path).dataobj)[mask], json.loads(sidecar_path(path).read_text())

    scene = ds.truth_masks["CSI1"]["scene"][mask]
    edge = ds.truth_masks["CSI1"]["edge"][mask]
    u3, meta = load("vp3DVS2D", "uniquersquared3D")
    sets = meta["VariancePartitioning"]["Sets"]
    assert [s["FeatureSpaces"] for s in sets] == [["user:scene3da", "user:scene3db"], ["user:edge2da"]]
    assert sets[0]["NFeatures"] == 2 * sets[1]["NFeatures"]
    q3, _ = load("vp3DVS2D", "uniqueq3D")
    q2, _ = load("vp3DVS2D", "uniqueq2D")
    u2, _ = load("vp3DVS2D", "uniquersquared2D")
    joint, _ = load("vp3DVS2D", "jointrsquared")
    shared, _ = load("vp3DVS2D", "sharedrsquared")
    assert u3[scene].mean() > 0.1 and abs(u3[edge].mean()) < 0.05
    assert u2[edge].mean() > 0.1 and abs(u2[scene].mean()) < 0.05
    assert (q3[scene] < 0.05).mean() > 0.8 and (q3[~scene] < 0.05).mean() < 0.1
    assert (q2[edge] < 0.05).mean() > 0.8 and (q2[~edge] < 0.05).mean() < 0.1
    np.testing.assert_allclose(shared, joint - u3 - u2, atol=1e-5)
    # the single-space pair too, named from the labels
    assert derivative_path(
        out, **ents, desc="vpscene3daVSedge2da", stat="splitrsquaredscene3da", suffix="statmap", extension=".nii.gz"
    ).exists()

    table = pd.read_csv(
        derivative_path(out, sub="CSI1", task="5000scenes", desc=ROI_TABLE_DESC, suffix="scores", extension=".tsv"),
        sep="\t",
    )
    ppa = table[(table.partitioning == "vp3DVS2D") & (table.roi == "PPA")].set_index("component")
    assert set(ppa.index) == {"joint", "shared", "unique3D", "unique2D"}
    assert ppa.loc["unique3D", "mean_rsquared"] > ppa.loc["unique2D", "mean_rsquared"]
    # the methods text describes it and cites its references
    from bids_taskenc.report.citation import render_methods

    text, cited = render_methods(out)
    assert "**Variance partitioning.**" in text and "3D (user:scene3da, user:scene3db) vs 2D (user:edge2da)" in text
    assert {"lescroart2019voxelwise", "steiger1980tests", "dupre2022himalaya"} <= set(cited)
    from bids_taskenc.encoding.banded.registry import REGISTRY as CV_SOLVERS

    assert CV_SOLVERS["per-fold"].methods in text  # how the folds were solved, from the solver's registry entry
    # the participant report draws the stacked bars and the unique maps
    from bids_taskenc.report.participant import write_participant_report

    page = write_participant_report(out, "CSI1").read_text()
    assert 'id="partitioning"' in page and "partitionbars" in page and "uniquemaps" in page
    # not a feature space: the group level and the report see only stat-r maps
    assert not derivative_path(out, **ents, desc="vp3DVS2D", stat="r", suffix="statmap", extension=".nii.gz").exists()


@pytest.mark.slow
def test_bad_sets_are_usage_errors(small_copy, capfd):
    bids = small_copy / "bids"
    common = [
        bids,
        small_copy / "out",
        "participant",
        "--features-dir",
        bids / "derivatives" / "features",
        "--work-dir",
        small_copy / "work",
        "--feature-spaces",
        "scene3da",
        "edge2da",
    ]
    assert run_app(*common, "--variance-partitioning", "group:3D") == 64
    assert run_app(*common, "--variance-partitioning", "group:semantic", "edge2da") == 64
    assert "group 'semantic'" in capfd.readouterr().err
    assert run_app(*common, "--variance-partitioning", "scene3da", "scene3da+edge2da") == 64
    assert "must not overlap" in capfd.readouterr().err
    assert run_app(*common, "--variance-partitioning", "nosuch", "edge2da") == 64
    assert not (small_copy / "out" / "sub-CSI1").exists()


def test_sets_resolve_from_names_labels_unions_and_groups(tmp_path):
    from types import SimpleNamespace

    from bids_taskenc.cli.parser import parse_args
    from bids_taskenc.workflow.partitioning import resolve_partitionings

    spaces = [
        SimpleNamespace(name=f"taskonomy:{n}", label=n, group=g)
        for n, g in [("keypoints3d", "3D"), ("depthzbuffer", "3D"), ("keypoints2d", "2D"), ("class1000", "semantic")]
    ]
    plans = resolve_partitionings(
        [["group:3D", "group:2D"], ["taskonomy:keypoints3d+depthzbuffer", "keypoints2d", "group:semantic"]], spaces
    )
    assert [p.name for p in plans] == ["vp3DVS2D", "vpkeypoints3dPLUSdepthzbufferVSkeypoints2dVSsemantic"]
    assert plans[0].sets[0].spaces == ("taskonomy:keypoints3d", "taskonomy:depthzbuffer")
    assert plans[1].sets[2].spaces == ("taskonomy:class1000",)
    config = tmp_path / "c.toml"
    config.write_text('variance_partitioning = [["group:3D", "group:2D"]]\n')
    args = parse_args([str(tmp_path), str(tmp_path / "o"), "participant", "--config", str(config)])
    assert args.variance_partitioning == [["group:3D", "group:2D"]]
