"""The GPU check's steps: their commands, own time limits and reserves (``gpu`` and ``cpu-smoke`` modes).

Part of ``benchmarks/gpu_check.py`` (see its docstring for the steps and how the runner shares the
budget out among them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "benchmarks"
DEFAULT_BUDGET_S = {"gpu": 470, "cpu-smoke": 300}


@dataclass
class Step:
    name: str
    description: str
    command: list[str]
    max_s: float  # own time limit
    reserve_s: float  # time kept for this step while earlier steps run
    result_file: Path | None = None
    parse: str = "json"  # 'json' (result_file) or 'junit'
    needs: str | None = None  # a background step that must have finished
    background: bool = False
    nice: int = 0


def sizes(mode: str) -> dict[str, list[str]]:
    """Each benchmark's size and device arguments in ``mode`` ('gpu' or 'cpu-smoke')."""
    if mode == "cpu-smoke":
        return {
            "ridge": ["--device", "cpu", "--n", "300", "--p", "64", "--v", "400", "--repeats", "1"],
            "banded": ["--device", "cpu", "--n", "300", "--p", "40", "--v", "100", "--threads", "1"],
            "feat": ["--device", "cpu", "--n-images", "1", "--batch-size", "1", "--workers", "2", "--tasks", "normal"],
            "single": [],
            "gen": ["--small", "--tasks"],
            "run": ["--device", "cpu", "--feature-spaces", "baseline:pixels"],
        }
    workers = str(min(16, os.cpu_count() or 2))
    return {
        "ridge": ["--device", "cuda", "--repeats", "3"],
        "banded": ["--device", "cuda"],
        "feat": ["--device", "cuda", "--n-images", "4916", "--batch-size", "256", "--workers", workers],
        "single": ["normal", "class_object"],
        "gen": [],
        "run": ["--device", "cuda", "--precision", "fast"],
    }


def _setup_steps(py: list[str], work: Path, gen: list[str]) -> list[Step]:
    """env, the background data of the participant step, and the CUDA tests."""
    data = work / "participant_data"
    pytest = ["-m", "pytest", "-m", "cuda", str(REPO / "tests" / "cuda"), "-q", "-p", "no:cacheprovider"]
    return [
        Step(
            "env",
            "Python, torch, CUDA, GPU and package versions",
            py + [str(BENCH / "gpu_check.py"), "--env-json", str(work / "env.json")],
            max_s=30,
            reserve_s=30,  # importing torch, nilearn and pybids took over 15 s on a loaded 2-core machine
            result_file=work / "env.json",
        ),
        Step(
            "participant_data",
            "synthetic participant's data and random weights (background, low priority)",
            py + [str(BENCH / "participant.py"), "generate", str(data), *gen, "--json", str(work / "data.json")],
            max_s=0,
            reserve_s=0,
            result_file=work / "data.json",
            background=True,
            nice=10,
        ),
        Step(
            "cuda_tests",
            "pytest -m cuda tests/cuda (skips without CUDA)",
            py + pytest + ["-o", "addopts=-ra", f"--junitxml={work / 'cuda_tests.xml'}"],
            max_s=90,
            reserve_s=45,
            result_file=work / "cuda_tests.xml",
            parse="junit",
        ),
    ]


def _solver_steps(py: list[str], work: Path, s: dict[str, list[str]]) -> list[Step]:
    """The single-space and banded ridge benchmarks against himalaya."""
    ridge = [str(BENCH / "ridge.py"), *s["ridge"], "--precision", "fast", "exact", "--no-sklearn"]
    banded = [str(BENCH / "banded.py"), *s["banded"], "--precision", "fast"]
    banded += ["--cv-solver", "per-fold", "hold-out", "cholesky"]
    return [
        Step(
            "ridge",
            "benchmarks/ridge.py W1 shape (smoke: tiny), fast and exact, vs himalaya",
            py + ridge + ["--json", str(work / "ridge.json")],
            max_s=100,
            reserve_s=45,
            result_file=work / "ridge.json",
        ),
        Step(
            "banded",
            "benchmarks/banded.py W1 shape (smoke: tiny), our three CV solvers, vs himalaya MultipleKernelRidgeCV",
            py + banded + ["--json", str(work / "banded.json")],
            max_s=150,
            reserve_s=40,
            result_file=work / "banded.json",
        ),
    ]


def _feature_steps(py: list[str], work: Path, s: dict[str, list[str]]) -> list[Step]:
    """Featurization (21 encoders x 4,916 JPEGs: the GPU planning figure), the participant, and --compile."""
    data = work / "participant_data"
    feat = [str(BENCH / "featurize.py"), *s["feat"]]
    run = [str(BENCH / "participant.py"), "run", str(data / "bids"), "--models", str(data / "models")]
    run += ["--work", str(work / "participant"), *s["run"]]
    return [
        Step(
            "featurize",
            "benchmarks/featurize.py, 21 encoders x 4,916 JPEGs (smoke: 1 x 1)",
            py
            + feat
            + ["--single", *s["single"], "--sample-out", str(work / "features_sample.npz")]
            + ["--json", str(work / "featurize.json")],
            max_s=75,
            reserve_s=40,
            result_file=work / "featurize.json",
        ),
        Step(
            "participant",
            "benchmarks/participant.py run: one participant end to end, 21 Taskonomy spaces "
            "(smoke: tiny, baseline:pixels)",
            py + run + ["--json", str(work / "participant.json")],
            max_s=210,
            reserve_s=150,
            result_file=work / "participant.json",
            needs="participant_data",
        ),
        Step(
            "featurize_compile",
            "step featurize with --compile, features compared with it",
            py
            + feat
            + ["--single", "--compile", "--sample-ref", str(work / "features_sample.npz")]
            + ["--json", str(work / "featurize_compile.json")],
            max_s=150,
            reserve_s=30,
            result_file=work / "featurize_compile.json",
        ),
    ]


def plan(mode: str, work: Path, python: str) -> list[Step]:
    """The steps of ``mode`` ('gpu' or 'cpu-smoke'), their commands and limits, in the order they run."""
    py = [python]
    s = sizes(mode)
    return _setup_steps(py, work, s["gen"]) + _solver_steps(py, work, s) + _feature_steps(py, work, s)
