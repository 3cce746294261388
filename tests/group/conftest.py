"""Fixtures for the group tests (helpers live in ``group_synthetic.py``)."""

from __future__ import annotations

import logging
import pickle

import pytest
from group_synthetic import planted_affinities, write_participant


@pytest.fixture
def outputs(tmp_path):
    """Three participants CSI1-3 in T1w with the planted clusters."""
    root = tmp_path / "out"
    for i, p in enumerate(("CSI1", "CSI2", "CSI3")):
        write_participant(root, p, seed=10 + i)
    return root


@pytest.fixture
def affinity_file(tmp_path):
    def make(shuffle_seed=None, name="affinities.pkl"):
        path = tmp_path / name
        with open(path, "wb") as fh:
            pickle.dump(planted_affinities(shuffle_seed), fh, protocol=2)
        return path

    return make


@pytest.fixture
def logged(caplog):
    """``logged()``: the messages the group level has logged so far (its notes and step times, INFO and above)."""
    caplog.set_level(logging.INFO, logger="bids_taskenc")

    def messages() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name.startswith("bids_taskenc.group")]

    return messages
