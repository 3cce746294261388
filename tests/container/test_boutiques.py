"""The Boutiques descriptor: generated from the parser, shipped, valid, and simulating the documented command."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from bids_taskenc.cli.boutiques import descriptor, render
from bids_taskenc.cli.parser import build_parser, parse_args

SHIPPED = Path(__file__).resolve().parents[2] / "container" / "boutiques.json"

#: The command of docs/boutiques.md, and the invocation that stands for it.
COMMAND = (
    "bids_taskenc /data/bids /data/bids/derivatives/bids_taskenc participant --participant-label CSI1 "
    "--feature-spaces taskonomy:keypoints3d taskonomy:edge2d --work-dir /scratch/work --offline -q"
)
INVOCATION = {
    "bids_dir": "/data/bids",
    "output_dir": "/data/bids/derivatives/bids_taskenc",
    "analysis_level": "participant",
    "participant_label": ["CSI1"],
    "feature_spaces": ["taskonomy:keypoints3d", "taskonomy:edge2d"],
    "work_dir": "/scratch/work",
    "offline": True,
    "quiet": True,
}


def test_the_shipped_descriptor_is_the_generated_one():
    assert SHIPPED.read_text(encoding="utf-8") == render(), (
        "container/boutiques.json is out of date: run `bids_taskenc-boutiques container/boutiques.json`"
    )


def test_every_option_is_an_input():
    """One input per option; two switches that share a setting (--standardize / --no-standardize) are two inputs
    named by their flags, since Boutiques ids are unique."""
    inputs = descriptor()["inputs"]
    ids = [i["id"] for i in inputs]
    assert len(ids) == len(set(ids))
    actions = [a for a in build_parser()._actions if a.dest not in ("help", "version")]
    assert len(inputs) == len(actions)
    flags = {i.get("command-line-flag") for i in inputs}
    assert all(max(a.option_strings, key=len) in flags for a in actions if a.option_strings)
    assert {"standardize", "no_standardize"} <= set(ids)


def test_bosh_validates_it():
    pytest.importorskip("boutiques")
    from boutiques.bosh import bosh

    assert bosh(["validate", str(SHIPPED)]) is None  # raises on an invalid descriptor


def test_bosh_simulate_gives_the_documented_command(tmp_path):
    pytest.importorskip("boutiques")
    from boutiques.bosh import bosh

    invocation = tmp_path / "invocation.json"
    invocation.write_text(json.dumps(INVOCATION))
    out = bosh(["exec", "simulate", str(SHIPPED), "-i", str(invocation)])
    simulated = shlex.split(out.shell_command)
    assert simulated[0] == "bids_taskenc"
    assert shlex.join(simulated[1:4]) == "/data/bids /data/bids/derivatives/bids_taskenc participant"
    # the simulated command spells out the defaults; it must mean exactly what the documented one means
    assert vars(parse_args(simulated[1:])) == vars(parse_args(shlex.split(COMMAND)[1:]))
