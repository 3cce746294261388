"""The GPU check's record of the machine (the ``env`` step) and its readers of the steps' result files.

Part of ``benchmarks/gpu_check.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from gpu_check_plan import REPO, Step

#: Packages whose versions the env step records (import name).
PACKAGES = (
    "numpy",
    "scipy",
    "pandas",
    "torch",
    "nibabel",
    "nilearn",
    "bids",
    "himalaya",
    "sklearn",
    "statsmodels",
    "matplotlib",
    "jinja2",
    "PIL",
    "triton",
    "bids_taskenc",
)


def _package_versions(info: dict) -> None:
    import importlib

    for mod in PACKAGES:
        try:
            m = importlib.import_module(mod)
            info["packages"][mod] = getattr(m, "__version__", "?")
        except Exception as exc:  # noqa: BLE001 - any import failure is worth recording
            info["import_errors"][mod] = f"{type(exc).__name__}: {exc}"


def _torch_info(info: dict) -> None:
    try:
        import torch

        info["torch_cuda"] = torch.version.cuda
        info["cuda_available"] = bool(torch.cuda.is_available())
        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            free, total = torch.cuda.mem_get_info(0)
            info["gpu"] = {
                "name": props.name,
                "capability": f"{props.major}.{props.minor}",
                "multiprocessors": props.multi_processor_count,
                "total_gb": round(total / 1e9, 1),
                "free_gb": round(free / 1e9, 1),
                "cudnn": torch.backends.cudnn.version(),
                "count": torch.cuda.device_count(),
            }
    except Exception as exc:  # noqa: BLE001
        info["torch_error"] = f"{type(exc).__name__}: {exc}"


def _nvidia_smi() -> str | None:
    smi = shutil.which("nvidia-smi")
    if not smi:
        return None
    q = "name,driver_version,memory.total,memory.used,clocks.sm,clocks.mem,temperature.gpu,power.draw"
    try:
        out = subprocess.run(
            [smi, f"--query-gpu={q}", "--format=csv,noheader"], capture_output=True, text=True, timeout=20
        )
        return out.stdout.strip() or out.stderr.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return f"failed: {exc}"


def _git_commit() -> str | None:
    try:
        cmd = ["git", "-C", str(REPO), "rev-parse", "HEAD"]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def env_report() -> dict:
    """What the machine is: Python, torch/CUDA/GPU, CPU count, versions of the packages the steps use."""
    import platform

    info: dict = {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "packages": {},
        "import_errors": {},
    }
    _package_versions(info)
    _torch_info(info)
    smi = _nvidia_smi()
    if smi is not None:
        info["nvidia_smi"] = smi
    info["git_commit"] = _git_commit()
    return info


def parse_junit(path: Path) -> dict:
    """Counts and per-test outcomes of a pytest ``--junitxml`` file."""
    root = ET.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        raise ET.ParseError(f"{path}: no <testsuite>")
    res: dict = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    res["passed"] = res["tests"] - res["failures"] - res["errors"] - res["skipped"]
    cases = {}
    for case in suite.iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name')}".split(".")[-1]
        outcome = "passed"
        for tag in ("failure", "error", "skipped"):
            el = case.find(tag)
            if el is not None:
                outcome = tag if tag != "failure" else "failed"
                msg = (el.get("message") or "").strip()
                if msg:
                    outcome += f": {msg[:300]}"
                break
        cases[name] = outcome
    res["cases"] = cases
    return res


def read_result(step: Step) -> dict:
    """The parsed result file of ``step`` ({} when it wrote none; a note when it is unreadable)."""
    if step.result_file is None or not step.result_file.exists():
        return {}
    try:
        if step.parse == "junit":
            return parse_junit(step.result_file)
        return json.loads(step.result_file.read_text())
    except (ValueError, ET.ParseError, OSError) as exc:
        return {"unreadable": f"{step.result_file.name}: {exc}"}
