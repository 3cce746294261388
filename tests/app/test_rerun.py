"""Reruns skip finished work; a run killed half-way and restarted gives identical outputs."""

from __future__ import annotations

import json
import re
import shutil

import nibabel as nib
import numpy as np
import pytest

from bids_taskenc.workflow import fit as participant

from .conftest import derivatives_under, run_app

pytestmark = pytest.mark.slow  # every test here runs the app end to end


def _snapshot(out):
    snap = {}
    for path in derivatives_under(out):  # the run logs and crash files differ from run to run
        rel = path.relative_to(out).as_posix()
        if rel.endswith(".nii.gz"):
            snap[rel] = np.asarray(nib.load(path).dataobj).tobytes()
        elif rel.endswith(".json"):
            snap[rel] = json.loads(path.read_text())
        elif rel.endswith(".html"):  # the pages link this run's own log and crash files and list its warnings
            html = re.sub(r'<h3 id="runlog">.*?(?=<h2)', "", path.read_text(), flags=re.S)
            snap[rel] = "\n".join(ln for ln in html.splitlines() if not ln.startswith("<p>Logs: "))
        else:
            snap[rel] = path.read_bytes()
    return snap


def test_crash_then_restart_gives_identical_outputs(small_copy, monkeypatch, capsys):
    bids = small_copy / "bids"
    argv = [
        "participant",
        "--features-dir",
        bids / "derivatives" / "features",
        "--work-dir",
        small_copy / "work",
        "--cv-folds",
        "3",
        "--feature-spaces",
        "user:scene3da",
        "user:edge2da",
        "user:random",
    ]
    out = small_copy / "out"
    assert run_app(bids, out, *argv) == 0
    reference = _snapshot(out)
    shutil.rmtree(out)
    shutil.rmtree(small_copy / "work")

    real_fit = participant.fit_encoding_model
    calls = []

    def crashing_fit(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("simulated crash half-way")
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(participant, "fit_encoding_model", crashing_fit)
    assert run_app(bids, out, *argv) != 0
    assert not (out / "sub-CSI1").exists(), "a crashed participant must leave no outputs"

    calls.clear()
    monkeypatch.setattr(participant, "fit_encoding_model", lambda *a, **k: (calls.append(1), real_fit(*a, **k))[1])
    assert run_app(bids, out, *argv) == 0
    assert len(calls) == 2, "the space fitted before the crash must come from the work cache"
    assert _snapshot(out) == reference

    calls.clear()
    assert run_app(bids, out, *argv) == 0
    assert calls == [], "a rerun with the same inputs and options refits nothing"


def test_staging_left_by_a_killed_run_is_removed(small_copy):
    import os
    import socket

    bids = small_copy / "bids"
    out = small_copy / "out"
    out.mkdir()
    killed = out / ".sub-CSI1.k1ll3d"
    (killed / "sub-CSI1" / "func").mkdir(parents=True)
    (killed / "owner.json").write_text(json.dumps({"host": socket.gethostname(), "pid": 2**22 + 12345}))
    no_owner = out / ".old-sub-CSI1.abc"
    no_owner.mkdir()
    running = out / ".sub-CSI1.running"  # a concurrent run of this participant, still alive: kept
    running.mkdir()
    (running / "owner.json").write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid()}))
    other = out / ".sub-CSI10.x"  # another participant's
    other.mkdir()
    assert (
        run_app(
            bids,
            out,
            "participant",
            "--features-dir",
            bids / "derivatives" / "features",
            "--work-dir",
            small_copy / "work",
            "--feature-spaces",
            "user:scene3da",
            "--contrast-bootstrap",
            "0",
            "--no-reports",
        )
        == 0
    )
    assert not killed.exists() and not no_owner.exists()
    assert running.exists() and other.exists()
    assert sorted(p.name for p in out.glob(".sub-CSI1.*")) == [".sub-CSI1.running"]
