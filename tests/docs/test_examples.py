"""The examples in docs/examples run as written and produce what they say."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_fit_one_participant_example_writes_the_map_and_the_figure(tmp_path):
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        MPLBACKEND="Agg",
        OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"),
    )
    proc = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "examples" / "fit_one_participant.py"), str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    maps = list((tmp_path / "derivatives" / "sub-CSI1" / "func").glob("*_desc-scene3da_stat-r_statmap.nii.gz"))
    assert len(maps) == 1
    png = tmp_path / "sub-CSI1_desc-scene3da_stat-r.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert (tmp_path / "derivatives" / "dataset_description.json").is_file()
    assert "voxels with q < 0.05" in proc.stdout
