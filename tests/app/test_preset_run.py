"""A participant run with --preset paper: the sidecars and the methods text record the preset, its choices and
the user's overrides."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bids_taskenc.outputs.naming import derivative_path, sidecar_path

from .conftest import run_app

pytestmark = pytest.mark.slow  # every test here runs the app end to end


def test_paper_preset_run_records_every_choice_and_the_override(small_dataset, tmp_path):
    ds = small_dataset
    out = tmp_path / "out"
    code = run_app(
        ds.bids_dir,
        out,
        "participant",
        "--features-dir",
        ds.features_dir,
        "--work-dir",
        tmp_path / "work",
        "--preset",
        "paper",
        "--p-sides",
        "one-sided",
        "--contrast-bootstrap",
        "0",
    )
    assert code == 0
    space = next(iter(ds.feature_spaces))
    path = derivative_path(
        out, sub="CSI1", task="5000scenes", space="T1w", desc=space, stat="r", suffix="statmap", extension=".nii.gz"
    )
    meta = json.loads(sidecar_path(path).read_text())
    assert meta["Preset"] == "paper"
    assert meta["PresetOverrides"] == {"fit.p_sides": {"Preset": "two-sided", "Used": "one-sided"}}
    assert meta["PresetSettings"]["fit.cv_score"] == "negmse"
    assert meta["CVScheme"] == "holdout" and meta["CVFolds"] == 1 and meta["ValidationFraction"] == 0.15
    assert meta["CVScore"] == "negative mean squared error"
    assert meta["Standardize"] is False and meta["AlphaGridRule"] == "paper"
    p = meta["FeatureDimension"]
    assert len(meta["AlphaGrid"]) == 100 and np.isclose(meta["AlphaGrid"][0], 1e-8)
    assert np.isclose(meta["AlphaGrid"][-1], 1e8 * np.sqrt(p))
    assert meta["PValueSides"] == "one-sided (r > 0)"
    assert meta["Responses"]["Repeats"] == "drop-repeats" and meta["Responses"]["NTrialsDropped"] > 0
    assert meta["Responses"]["ZScoring"] == "trials"
    assert meta["Config"]["preset"] == "paper"
    methods = (out / "logs" / "CITATION.md").read_text()
    assert "`paper` preset" in methods and "fit.p_sides = one-sided (preset: two-sided)" in methods
    assert "one random validation split" in methods and "centred on the training images" in methods
    assert "z-scored per voxel over the trials of its run" in methods
    assert "10^8·√p" in methods and "do not mark as a repeat" in methods
