"""The synthetic generator's size options: grid, per-session run counts, BOLD5000's counts."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from bids_taskenc.testing.cli import main as synthetic_main
from bids_taskenc.testing.synthetic import (
    BOLD5000_COUNTS,
    BOLD5000_GRID,
    DEFAULT_GRID,
    LEAD_IN_S,
    TAIL_S,
    TR,
    TRIAL_SPACING_S,
    _ellipsoid,
    _roi_masks,
)


def test_bold5000_counts_are_the_releases():
    runs = BOLD5000_COUNTS["runs_per_session"]
    assert BOLD5000_COUNTS["n_sessions"] == len(runs) == 15 and set(runs) == {9, 10} and sum(runs) == 142
    trials = sum(runs) * BOLD5000_COUNTS["trials_per_run"]
    images = trials - 3 * BOLD5000_COUNTS["n_repeated"] - 2 * BOLD5000_COUNTS["n_shown_thrice"]
    assert (trials, images) == (5254, 4916)
    assert (LEAD_IN_S + TRIAL_SPACING_S * BOLD5000_COUNTS["trials_per_run"] + TAIL_S) / TR == 194
    brain = _ellipsoid(BOLD5000_GRID, np.array(BOLD5000_GRID) / 2 - 0.5, np.array(BOLD5000_GRID) / 2 - 0.3)
    assert 45_000 < brain.sum() < 56_000


def test_default_grid_keeps_its_regions():
    """ROIs scale with the grid; on the default grid they are the fixed-radius ones of before."""
    x, y, z = DEFAULT_GRID
    masks = _roi_masks(DEFAULT_GRID)
    assert np.array_equal(masks["LHPPA"], _ellipsoid(DEFAULT_GRID, (x / 2 - 0.22 * x, 0.55 * y, 0.3 * z),
                                                     (1.8, 1.8, 1.6)))
    big = _roi_masks((36, 36, 24))
    # twice the grid: radii 3.6, 3.6, 3.2 voxels, an ellipsoid of 4/3 pi 3.6 3.6 3.2 = 174 voxels
    assert big["LHPPA"].sum() == pytest.approx(4 / 3 * np.pi * 3.6 * 3.6 * 3.2, rel=0.1)


def test_cli_grid_runs_per_session_and_repeats(tmp_path):
    bids = tmp_path / "ds"
    assert synthetic_main([str(bids), "--participants", "1", "--grid", "20", "20", "14", "--sessions", "2",
                           "--runs-per-session", "2", "1", "--trials-per-run", "12", "--repeated", "2",
                           "--shown-thrice", "1"]) == 0
    events = sorted((bids / "sub-CSI1").rglob("*task-5000scenes_*_events.tsv"))
    assert [e.name.split("_")[1] for e in events] == ["ses-01", "ses-01", "ses-02"]
    shown = pd.concat([pd.read_csv(e, sep="\t") for e in events])["ImgName"].value_counts()
    assert len(shown) == 36 - 6 - 2 and sorted(shown[shown > 1].tolist()) == [3, 4, 4]
    bold = nib.load(next((bids / "sub-CSI1").rglob("*run-01_bold.nii.gz")))
    assert bold.shape == (20, 20, 14, (6 + 10 * 12 + 12) // 2)
    truth = json.loads((bids / "derivatives" / "synthetic_truth" / "truth.json").read_text())
    assert truth["grid"] == [20, 20, 14] and truth["runs_per_session"] == [2, 1] and truth["n_images"] == 28


def test_cli_bold5000_counts_exclude_explicit_counts(tmp_path, capsys):
    with pytest.raises(SystemExit):
        synthetic_main([str(tmp_path / "ds"), "--bold5000-counts", "--sessions", "2"])
    assert "--bold5000-counts sets the counts; drop --sessions" in capsys.readouterr().err
