"""Step timings of the run log: consecutive laps, repeats summed in the summary."""

import logging

from bids_taskenc.workflow import timing


def test_laps_log_each_step_and_sum_repeats(caplog, monkeypatch):
    monkeypatch.setattr(timing, "RECORDED", [])
    clock = iter([0.0, 1.5, 4.0, 4.25, 10.0])
    laps = timing.Laps("sub-1 task-x", clock=lambda: next(clock))
    with caplog.at_level(logging.INFO, logger="bids_taskenc.timing"):
        assert laps.lap("responses") == 1.5
        assert laps.lap("maps") == 2.5
        assert laps.lap("fit a") == 0.25
        assert laps.lap("maps") == 5.75
    assert [r.getMessage() for r in caplog.records][0] == "sub-1 task-x: step responses took 1.50 s"
    assert timing.summary_lines() == [
        "sub-1 task-x: responses 1.50 s",
        "sub-1 task-x: maps 8.25 s",
        "sub-1 task-x: fit a 0.25 s",
    ]
    timing.reset()
    assert timing.summary_lines() == []
