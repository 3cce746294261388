"""A participant run with a Taskonomy encoder, through the real weights store and cache."""

from __future__ import annotations

import json
import shutil

import pytest

from bids_taskenc.errors import EXIT_INPUT_MISSING
from bids_taskenc.features import pipeline
from bids_taskenc.features.taskonomy import make_random_checkpoint
from bids_taskenc.outputs.naming import derivative_path, sidecar_path

from .conftest import files_under, run_app

pytestmark = pytest.mark.slow  # every test here runs the app end to end


def test_taskonomy_encoder_run_then_cached_rerun(small_copy, tmp_path, monkeypatch, capsys):
    store = tmp_path / "store"
    weights = make_random_checkpoint("keypoints3d", store, seed=1)
    bids = small_copy / "bids"
    out = bids / "derivatives" / "bids_taskenc"
    argv = [
        bids,
        out,
        "participant",
        "--feature-spaces",
        "taskonomy:keypoints3d",
        "--taskonomy-weights",
        store,
        "--offline",
        "--work-dir",
        small_copy / "work",
        "--cv-folds",
        "3",
    ]
    assert run_app(*argv) == 0
    # random weights carry a hash that is not the published one: the run says so on stderr (a WARNING record)
    err = capsys.readouterr().err
    assert " WARNING " in err and "custom weights for task 'keypoints3d'" in err, err
    r_map = derivative_path(
        out,
        sub="CSI1",
        task="5000scenes",
        space="T1w",
        desc="keypoints3d",
        stat="r",
        suffix="statmap",
        extension=".nii.gz",
    )
    meta = json.loads(sidecar_path(r_map).read_text())
    assert meta["FeatureSpace"] == "taskonomy:keypoints3d" and meta["FeatureGroup"] == "3D"
    assert meta["FeatureDimension"] == 2048
    assert weights.name.split("-")[-1].split(".")[0] in json.dumps(meta["FeatureProvenance"])

    def no_compute(*args, **kwargs):
        raise AssertionError("features were recomputed although the cache holds them")

    monkeypatch.setattr(pipeline, "_compute", no_compute)
    shutil.rmtree(out)
    assert run_app(*argv) == 0
    assert "custom weights for task 'keypoints3d'" in capsys.readouterr().err
    assert r_map.exists()


def test_taskonomy_offline_and_missing_weights(small_copy, tmp_path, capsys):
    bids = small_copy / "bids"
    out = bids / "derivatives" / "bids_taskenc"
    code = run_app(
        bids,
        out,
        "participant",
        "--feature-spaces",
        "taskonomy:normal",
        "--taskonomy-weights",
        tmp_path / "empty",
        "--offline",
    )
    assert code == EXIT_INPUT_MISSING
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("bids_taskenc: error:")]
    assert len(err) == 1 and "normal_encoder" in err[0] and "bids_taskenc-models fetch" in err[0]
    assert files_under(out) == []
