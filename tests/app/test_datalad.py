"""A DataLad dataset of the synthetic data, processed with ``datalad run`` and reproduced by ``datalad rerun``.

Skipped without DataLad (the test extra installs it) or without git-annex (a Debian package: ``apt-get install
git-annex``), with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from bids_taskenc.testing import make_synthetic_dataset

pytestmark = pytest.mark.slow


def _datalad() -> list[str]:
    pytest.importorskip("datalad", reason="datalad is not installed (pip install datalad)")
    if shutil.which("git-annex") is None:
        pytest.skip("git-annex is not installed (Debian: apt-get install git-annex)")
    exe = Path(sys.executable).with_name("datalad")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "datalad"]


def _maps(out: Path) -> dict[str, np.ndarray]:
    return {p.name: np.asarray(nib.load(p).dataobj) for p in sorted(out.rglob("*_statmap.nii.gz"))}


def test_datalad_run_then_rerun_reproduces_the_maps(tmp_path):
    datalad = _datalad()
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@example.org",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@example.org",
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")]),
    }
    study = tmp_path / "study"
    subprocess.run([*datalad, "create", str(study)], check=True, env=env, capture_output=True)
    ds = make_synthetic_dataset(
        study / "inputs", n_participants=1, n_sessions=1, runs_per_session=2, trials_per_run=16, n_repeated=2,
        shape=(10, 10, 8), seed=3,
    )  # fmt: skip
    subprocess.run([*datalad, "save", "-d", str(study), "-m", "inputs"], check=True, env=env, capture_output=True)
    bids = ds.bids_dir.relative_to(study)
    command = (
        f"{sys.executable} -m bids_taskenc {bids} outputs/bids_taskenc participant "
        f"--features-dir {bids}/derivatives/features --feature-spaces user:random --cv-folds 2 "
        f"--contrast-bootstrap 0 --no-reports -q -w {tmp_path / 'work'} --clean-workdir --seed 0"
    )
    run = [*datalad, "run", "-d", str(study), "-m", "participant level", "--input", str(bids),
           "--output", "outputs/bids_taskenc", command]  # fmt: skip
    subprocess.run(run, check=True, env=env, cwd=study, capture_output=True)
    first = _maps(study / "outputs" / "bids_taskenc")
    assert first, "datalad run wrote no maps"
    subprocess.run([*datalad, "rerun", "-d", str(study)], check=True, env=env, cwd=study, capture_output=True)
    again = _maps(study / "outputs" / "bids_taskenc")
    assert again.keys() == first.keys()
    for name, values in first.items():
        np.testing.assert_allclose(again[name], values, rtol=1e-5, atol=1e-6, equal_nan=True, err_msg=name)
    log = subprocess.run(["git", "log", "--format=%s"], check=True, env=env, cwd=study, capture_output=True, text=True)
    assert "participant level" in log.stdout
