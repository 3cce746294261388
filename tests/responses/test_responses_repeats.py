"""--repeats: an image's response is the mean of its showings, its first showing, or the showing the events do
not mark as a repeat (Wang et al.'s rule; in BOLD5000 the mark is often on the first showing)."""

from __future__ import annotations

import logging
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from bids_taskenc.responses.images import average_repeats
from bids_taskenc.responses.repeats import REPEATS, chosen_trials, select_showings


def _responses(marked=True):
    # image a: shown 3 times, the FIRST showing marked rep_ (as 77 of CSI1's 113 repeated images), the second not;
    # image b: once; image c: twice, the second marked
    ids = ["a.jpg", "b.jpg", "a.jpg", "c.jpg", "a.jpg", "c.jpg"]
    rep = [True, False, False, False, True, True]
    trials = pd.DataFrame({"image_id": ids, "session": ["01"] * 6})
    if marked:
        trials["declared_repeat"] = rep
    data = np.arange(6 * 4, dtype=np.float32).reshape(6, 4) * np.array([1, 2, 3, 4], np.float32)
    mask = nib.Nifti1Image(np.ones((2, 2, 1), np.uint8), np.eye(4))
    return average_repeats(data, trials, mask), data


def test_average_is_the_mean_and_recorded():
    responses, data = _responses()
    out = select_showings(responses, "average")
    assert np.allclose(out.data[0], data[[0, 2, 4]].mean(0))
    assert out.n_averaged is None and out.provenance["Repeats"] == "average"


def test_first_showing_and_drop_repeats_keep_one_trial_each():
    responses, data = _responses()
    assert responses.image_ids == ["a.jpg", "b.jpg", "c.jpg"]
    first = select_showings(responses, "first")
    assert np.array_equal(first.data, data[[0, 1, 3]])
    paper = select_showings(responses, "drop-repeats")
    assert np.array_equal(chosen_trials(responses, "drop-repeats"), [2, 1, 3])
    assert np.array_equal(paper.data, data[[2, 1, 3]])  # a: its unmarked second showing, not its first
    assert np.array_equal(paper.n_averaged, [1, 1, 1])
    assert paper.provenance["Repeats"] == "drop-repeats" and paper.provenance["NTrialsDropped"] == 3
    # the single trials stay for the noise ceiling
    assert paper.trial_data.shape == (6, 4) and np.array_equal(paper.n_presentations, [3, 1, 2])
    assert set(REPEATS) == {"average", "first", "drop-repeats"}


def test_drop_repeats_without_marks_keeps_the_first_showing_and_says_so(caplog):
    responses, data = _responses(marked=False)
    with caplog.at_level(logging.WARNING):
        out = select_showings(responses, "drop-repeats")
    assert np.array_equal(out.data, data[[0, 1, 3]])
    assert "mark no repeats" in caplog.text


def test_unknown_rule_is_an_error():
    responses, _ = _responses()
    with pytest.raises(ValueError, match="must be one of"):
        select_showings(responses, "last")


def test_noise_ceiling_of_single_showings_counts_one_trial_per_test_image(monkeypatch):
    from types import SimpleNamespace

    from bids_taskenc.workflow import noise

    responses, _ = _responses()
    paper = select_showings(responses, "drop-repeats")
    seen = {}

    def first_call(fn, trial_data, *args, **kwargs):
        seen[fn.__name__] = kwargs
        raise StopIteration  # enough: the counts are what is checked

    monkeypatch.setattr(noise, "in_voxel_blocks", first_call)
    split = SimpleNamespace(test=np.array([0, 2]), train=np.array([1]))
    with pytest.raises(StopIteration):
        noise.noise_ceiling_maps(SimpleNamespace(ents={"sub": "X", "task": "t"}), paper, split, fdr_alpha=0.05, seed=0)
    assert np.array_equal(seen["noise_ceiling"]["n_average"], [1, 1])  # averaged, it would be [3, 2]


REAL_EVENTS = Path(__file__).resolve().parents[3] / "shared" / "real" / "ds001499" / "ds001499-CSI1-text.tgz"


@pytest.mark.skipif(not REAL_EVENTS.is_file(), reason="the real ds001499 text files (../shared/real) are absent")
def test_drop_repeats_on_bold5000_keeps_the_showing_without_rep(tmp_path):
    """CSI1's real events: 5,254 trials of 4,916 images; the paper's rule keeps the one showing whose ImgType has no
    rep_, which for 77 of the 113 repeated images is not the first."""
    import re
    import tarfile

    from bids_taskenc.bids.dataset import RunFiles
    from bids_taskenc.bids.trials import build_trials

    with tarfile.open(REAL_EVENTS) as tar:
        members = [m for m in tar.getmembers() if re.search(r"task-5000scenes_run-\d+_events\.tsv$", m.name)]
        tar.extractall(tmp_path, members=members, filter="data")
    runs = []
    for m in sorted(members, key=lambda m: m.name):
        ses, run = re.search(r"ses-(\d+)_task-5000scenes_run-(\d+)", m.name).groups()
        runs.append(RunFiles("CSI1", ses, "5000scenes", int(run), tmp_path / "x.nii.gz", tmp_path / m.name, 2.0))
    trials = build_trials(runs)
    n = len(trials)
    mask = nib.Nifti1Image(np.ones((1, 1, 1), np.uint8), np.eye(4))
    responses = average_repeats(np.arange(n, dtype=np.float32)[:, None], trials, mask)  # a trial's value: its row
    assert (n, len(responses.image_ids)) == (5254, 4916)
    first = chosen_trials(responses, "first")
    kept = chosen_trials(responses, "drop-repeats")
    assert not trials["declared_repeat"].to_numpy()[kept].any()  # never a rep_ showing
    repeated = responses.n_presentations > 1
    assert repeated.sum() == 113
    assert int((kept != first)[repeated].sum()) == 77
    paper = select_showings(responses, "drop-repeats")
    assert np.array_equal(paper.data[:, 0], kept.astype(np.float32))
    assert paper.provenance["NTrialsDropped"] == 338
