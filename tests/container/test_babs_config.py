"""The BABS configuration in examples/babs: our parser takes its arguments, and BABS's own code renders it."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bids_taskenc.cli.parser import parse_args

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "examples" / "babs" / "config_bids_taskenc.yaml"
CHECK = ROOT / "examples" / "babs" / "check_babs_config.py"


def _app_args(config: dict) -> list[str]:
    """``bids_app_args`` as BABS puts them on the command line (flags without a value stand alone)."""
    args = []
    for key, value in config["bids_app_args"].items():
        if key == "$SUBJECT_SELECTION_FLAG":
            args += [value, "CSI1"]
        elif value in ("", None):
            args.append(key)
        else:
            args += [key, *shlex.split(value)]
    return args


def test_our_parser_takes_the_configured_arguments(tmp_path):
    config = yaml.safe_load(CONFIG.read_text())
    args = parse_args([str(tmp_path), str(tmp_path / "outputs" / "bids_taskenc"), "participant", *_app_args(config)])
    assert args.participant_label == ["CSI1"] and args.offline and args.no_reports
    assert "--nv" in config["singularity_args"]
    assert "#SBATCH --gres=gpu:1" in config["cluster_resources"]["customized_text"]
    assert list(config["zip_foldernames"]) == ["bids_taskenc"] and config["all_results_in_one_zip"] is True


def _babs_python() -> str:
    """An interpreter with BABS: $BABS_PYTHON (BABS pins numpy<2: its own venv), else this one if it has BABS."""
    if os.environ.get("BABS_PYTHON"):
        return os.environ["BABS_PYTHON"]
    pytest.importorskip("babs", reason="BABS is not installed (set BABS_PYTHON to a venv's python that has it)")
    return sys.executable


def test_babs_renders_the_configuration_with_the_gpu_settings():
    proc = subprocess.run([_babs_python(), str(CHECK), str(CONFIG)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "--nv" in proc.stdout and "#SBATCH --gres=gpu:1" in proc.stdout
    assert '--participant-label "${subid}"' in proc.stdout
