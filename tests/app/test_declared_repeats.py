"""BOLD5000's ImgType 'rep_' against the order of showings: one message per participant, at the right level."""

from __future__ import annotations

import logging

import pandas as pd

from bids_taskenc.bids.dataset import RunFiles
from bids_taskenc.bids.trials import build_trials


def _runs(tmp_path, showings: list[list[tuple[str, str]]]) -> list[RunFiles]:
    """One run per list of (ImgName, ImgType) showings, 10 s apart."""
    runs = []
    for k, rows in enumerate(showings, start=1):
        events = tmp_path / f"sub-CSI1_ses-01_task-5000scenes_run-{k:02d}_events.tsv"
        pd.DataFrame(
            {
                "onset": [10.0 * i for i in range(len(rows))],
                "duration": 1.0,
                "ImgName": [name for name, _ in rows],
                "ImgType": [kind for _, kind in rows],
            }
        ).to_csv(events, sep="\t", index=False)
        runs.append(RunFiles("CSI1", "01", "5000scenes", k, tmp_path / "bold.nii.gz", events, 2.0))
    return runs


def test_ds001499_rep_marks_are_one_info_line_per_participant(tmp_path, caplog):
    """As in ds001499: 3 of 4 showings marked, the first in time among them; in every run of the participant."""
    showings = [
        [("a.jpg", "rep_coco"), ("x.jpg", "coco"), ("b.jpg", "scenes")],
        [("a.jpg", "coco"), ("b.jpg", "rep_scenes"), ("y.jpg", "imagenet")],
        [("a.jpg", "rep_coco"), ("b.jpg", "rep_scenes"), ("a.jpg", "rep_coco")],
        [("b.jpg", "rep_scenes")],
    ]
    with caplog.at_level(logging.INFO, logger="bids_taskenc.bids.trials"):
        trials = build_trials(_runs(tmp_path, showings))
    assert trials.loc[trials["image_id"] == "a.jpg", "repeat_index"].tolist() == [0, 1, 2, 3]
    records = [r for r in caplog.records if "rep_" in r.getMessage()]
    assert len(records) == 1 and records[0].levelno == logging.INFO
    message = records[0].getMessage()
    assert "2 repeated images" in message and "in 1 of them the first showing" in message and "ds001499" in message


def test_other_rep_disagreements_are_a_warning(tmp_path, caplog):
    showings = [[("a.jpg", "rep_coco"), ("b.jpg", "scenes")], [("b.jpg", "rep_scenes")]]
    with caplog.at_level(logging.INFO, logger="bids_taskenc.bids.trials"):
        build_trials(_runs(tmp_path, showings))
    records = [r for r in caplog.records if "rep_" in r.getMessage()]
    assert len(records) == 1 and records[0].levelno == logging.WARNING
    assert "a.jpg: 1 of 1 showings marked" in records[0].getMessage()
