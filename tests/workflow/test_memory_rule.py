"""The memory ceiling's arithmetic has one home (core/resources.py), and the readers, the engine and the fit use it."""

from __future__ import annotations

import pytest

from bids_taskenc.core import resources as rule


def test_the_rule():
    assert rule.memory_budget(1.5, lambda: pytest.fail("free memory read although a ceiling was given"), 0.5) == 15e8
    assert rule.memory_budget(None, lambda: 10e9, 0.8) == 8e9
    with pytest.raises(ValueError, match="mem_gb must be positive"):
        rule.memory_budget(0, lambda: 1, 0.5)
    assert rule.room_bytes(10, 3, 4) == 3 and rule.room_bytes(10, 11) == -1
    assert [rule.pieces_that_fit(room, 10, 4) for room in (9, 10, 25, 100)] == [0, 1, 2, 4]
    assert rule.available_cpus() >= 1 and rule.rss_bytes() > 0


def test_readers_engine_and_fit_apply_the_same_rule(monkeypatch):
    import torch

    from bids_taskenc.encoding.device import memory_budget_bytes
    from bids_taskenc.responses.runs import reader_threads
    from bids_taskenc.workflow import resources

    for ceiling, resident, per_run in [(3.5e9, 1e9, 1e9), (1.2e9, 1e8, 1e9), (9e9, 0, 2e9)]:
        expected = rule.pieces_that_fit(rule.room_bytes(int(ceiling), int(resident)), per_run, 4)
        assert reader_threads(4, per_run=int(per_run), mem_bytes=ceiling, resident=resident) == expected
    assert memory_budget_bytes(torch.device("cpu"), 2.5) == rule.memory_budget(2.5, lambda: 0, 0.5) == 2_500_000_000
    monkeypatch.setattr(resources, "rss_bytes", lambda: 10**9)
    left = resources.fit_mem_gb(4.0, "cpu", 10**9, 5 * 10**8)
    assert left == rule.room_bytes(4.0 * rule.BYTES_PER_GB, 10**9, 10**9, 5 * 10**8) / rule.BYTES_PER_GB == 1.5
