"""Group-level options through the command line: FDR level, raw maps, top-k, permutations, ROIs, space."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from bids_taskenc.outputs.naming import derivative_path

from .conftest import run_app

pytestmark = pytest.mark.slow  # every test here runs the app end to end

TASK = "5000scenes"


def test_group_options_reach_the_group_level(modern_run, tmp_path, capfd):
    ds, out = modern_run
    copy = tmp_path / "out"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("group", "figures", "*.html"))
    code = run_app(
        ds.bids_dir,
        copy,
        "group",
        "--offline",
        "--n-bootstrap",
        "10",
        "--fdr-alpha",
        "0.001",
        "--unthresholded",
        "--top-k",
        "2",
        "--group-permutations",
        "0",
        "--no-reports",
    )
    assert code == 0
    meta = json.loads(
        derivative_path(copy, task=TASK, desc="similarity", suffix="matrix", extension=".json").read_text()
    )
    settings = meta["Settings"]
    assert settings["FDRLevel"] == 0.001 and settings["Thresholded"] is False
    assert settings["TopK"] == 2 and settings["NPermutations"] == 0 and settings["NBootstrap"] == 10
    topk = pd.read_csv(derivative_path(copy, task=TASK, desc="graph", suffix="topk", extension=".tsv"), sep="\t")
    assert topk.groupby(topk.columns[0]).size().max() <= 2
    # the participant level's default ROI folder (derivatives/spm) is read at group level too, hemispheres pooled
    for roi in ("EarlyVis", "PPA", "RSC"):
        path = derivative_path(copy, task=TASK, roi=roi, desc="similarity", suffix="matrix", extension=".tsv")
        assert path.exists(), roi
    capfd.readouterr()
    code = run_app(ds.bids_dir, copy, "group", "--offline", "--space", "MNI152NLin2009cAsym", "--no-reports")
    assert code == 66
    assert "space 'MNI152NLin2009cAsym' missing for sub-CSI1" in capfd.readouterr().err
