"""benchmarks/gpu_check.sh on the CPU: its step list, its runner (failures and time-outs
recorded, later steps still run), its goals, and a whole --cpu-smoke run."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "gpu_check.sh"
STEPS = ["env", "participant_data", "cuda_tests", "ridge", "banded", "featurize", "participant", "featurize_compile"]


def _load():
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "benchmarks" / "gpu_check.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = mod
    spec.loader.exec_module(mod)
    return mod


def _env(**extra):
    env = dict(os.environ, PYTHON=sys.executable, GPU_CHECK_INSTALL="0", **extra)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def test_dry_run_lists_the_steps_and_runs_nothing(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        ["bash", str(SCRIPT), "--dry-run", "--work", str(tmp_path / "work")],
        cwd=tmp_path,
        env=_env(OUT=str(out)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    positions = [text.index(f" {name}: ") for name in STEPS]
    assert positions == sorted(positions), text
    assert "budget 470 s" in text and str(out / "gpu_check.json") in text
    assert "-m pytest -m cuda" in text and "--precision fast exact" in text and "--n-images 4916" in text
    assert text.count(" --compile ") == 1 and "--device cuda" in text
    assert not out.exists() and not (tmp_path / "work").exists()


def test_dry_run_smoke_plan_is_cpu_only(tmp_path):
    mod = _load()
    steps = mod.plan("cpu-smoke", tmp_path, sys.executable)
    assert [s.name for s in steps] == STEPS
    flat = " ".join(" ".join(s.command) for s in steps)
    assert "cuda" not in flat.replace("-m cuda", "").replace("tests/cuda", "").replace("cuda_tests", "")
    gpu = mod.plan("gpu", tmp_path, sys.executable)
    # the own limits need not fit the budget (the runner trims them), the reserves must
    assert sum(s.reserve_s for s in gpu if not s.background) <= mod.DEFAULT_BUDGET_S["gpu"]


def test_runner_records_failure_and_timeout_and_goes_on(tmp_path):
    mod = _load()
    py = sys.executable
    res = tmp_path / "work" / "third.json"
    pidfile = tmp_path / "child.pid"
    steps = [
        mod.Step("fails", "exits 3", [py, "-c", "import sys; print('boom'); sys.exit(3)"], max_s=20, reserve_s=1),
        mod.Step("bg", "background", [py, "-c", "import time; time.sleep(0.2)"], max_s=0, reserve_s=0, background=True),
        mod.Step(
            "hangs",
            "sleeps, and so does a child it started",
            [
                py,
                "-c",
                "import subprocess, time; c = subprocess.Popen(['sleep', '60']); "
                f"open({str(pidfile)!r}, 'w').write(str(c.pid)); print('waiting', flush=True); "
                "time.sleep(60)",
            ],
            max_s=2,
            reserve_s=1,
        ),
        mod.Step(
            "third",
            "writes json",
            [py, "-c", f"open({str(res)!r}, 'w').write('{{\"x\": 1}}')"],
            max_s=20,
            reserve_s=1,
            result_file=res,
            needs="bg",
        ),
    ]
    out, work = tmp_path / "out", tmp_path / "work"
    out.mkdir()
    work.mkdir()
    runner = mod.Runner("cpu-smoke", out, work, budget_s=60, python=py)
    runner.min_step_s = 1
    doc = runner.run(steps)
    st = doc["steps"]
    assert st["fails"]["status"] == "failed" and st["fails"]["rc"] == 3 and "boom" in st["fails"]["log_tail"]
    assert st["hangs"]["status"] == "timeout" and "waiting" in st["hangs"]["log_tail"]
    assert st["hangs"]["seconds"] < 10
    child = int(pidfile.read_text())
    status = Path(f"/proc/{child}/status")
    assert not status.exists() or "zombie" in status.read_text(), "the timed-out step's child still runs"
    assert st["bg"]["status"] == "ok" and st["bg"]["seconds"] < 10
    assert st["third"]["status"] == "ok" and st["third"]["result"] == {"x": 1}
    assert doc["all_steps_ok"] is False
    on_disk = json.loads((out / "gpu_check.json").read_text())
    assert on_disk["steps"]["third"]["status"] == "ok" and on_disk["finished_utc"]
    log = (out / "gpu_check.log").read_text()
    assert "===== fails =====" in log and "boom" in log and "===== end hangs: timeout" in log


def test_runner_skips_a_step_whose_data_failed(tmp_path):
    mod = _load()
    py = sys.executable
    steps = [
        mod.Step("data", "fails", [py, "-c", "raise SystemExit(1)"], max_s=0, reserve_s=0, background=True),
        mod.Step("use", "needs data", [py, "-c", "pass"], max_s=20, reserve_s=1, needs="data"),
    ]
    (tmp_path / "o").mkdir()
    (tmp_path / "w").mkdir()
    doc = mod.Runner("gpu", tmp_path / "o", tmp_path / "w", 60, py).run(steps)
    assert doc["steps"]["data"]["status"] == "failed"
    assert doc["steps"]["use"]["status"] == "skipped" and "data" in doc["steps"]["use"]["note"]


def test_goals_are_judged_only_at_the_goal_sizes():
    mod = _load()
    steps = {
        "cuda_tests": {"result": {"tests": 11, "passed": 11, "failures": 0, "errors": 0, "skipped": 0}},
        "ridge": {"result": {"ours": {"fast": {"seconds": 0.30, "ratio_himalaya_over_ours": 8.0}}}},
        "banded": {"result": {"shape": {"n": 4916}, "ratio_himalaya_over_ours": 9.0}},
        "featurize": {"result": {"n_images": 4916, "all21_seconds": 9.0}},
        "featurize_compile": {
            "result": {"n_images": 4916, "all21_seconds": 12.0, "sample_vs_ref": {"min_corr": 0.9999}}
        },
        "participant": {"result": {"app_seconds": 170.0}},
        "participant_data": {"result": {"size": "bold5000"}},
    }
    goals = {g["name"]: g for g in mod.evaluate_goals(steps, "gpu")}
    assert goals["cuda_tests_all_passed"]["met"] is True
    assert goals["ridge_w1_fast_seconds"]["met"] is True
    assert goals["ridge_w1_fast_speedup_vs_himalaya"]["met"] is False
    # banded ridge is judged against the single-space engine's ratio of the same run (8x here)
    assert goals["banded_w1_speedup_vs_himalaya"]["met"] is True
    assert goals["banded_w1_speedup_vs_himalaya"]["limit"] == 8.0
    assert goals["featurize_21x4916_seconds"]["met"] is True
    assert goals["featurize_compile_21x4916_seconds"]["met"] is False
    assert goals["featurize_compile_same_features"]["met"] is True
    assert goals["participant_21_spaces_end_to_end_seconds"]["met"] is True
    # a generator without the BOLD5000 options: the participant goal is not judged
    steps["participant_data"]["result"]["missing_options"] = ["--grid"]
    goals = {g["name"]: g for g in mod.evaluate_goals(steps, "gpu")}
    assert goals["participant_21_spaces_end_to_end_seconds"]["met"] is None
    assert "--grid" in goals["participant_21_spaces_end_to_end_seconds"]["note"]
    # skipped CUDA tests (no GPU) are not a pass; smoke runs judge nothing
    steps["cuda_tests"]["result"].update(skipped=11, passed=0)
    assert {g["name"]: g for g in mod.evaluate_goals(steps, "gpu")}["cuda_tests_all_passed"]["met"] is False
    assert all(g["met"] is None for g in mod.evaluate_goals(steps, "cpu-smoke"))
    # a step that ran out of time has missed its time goal; one that failed measured nothing
    del steps["participant_data"]["result"]["missing_options"]
    steps["participant"] = {"status": "timeout", "timeout_s": 210, "result": {}}
    steps["ridge"] = {"status": "failed", "result": {}}
    goals = {g["name"]: g for g in mod.evaluate_goals(steps, "gpu")}
    assert goals["participant_21_spaces_end_to_end_seconds"]["met"] is False
    assert "timed out" in goals["participant_21_spaces_end_to_end_seconds"]["note"]
    assert goals["ridge_w1_fast_seconds"]["met"] is None and "failed" in goals["ridge_w1_fast_seconds"]["note"]
    # without the single-space ratio the banded goal is the CPU's 16x; a smaller shape is not judged
    assert goals["banded_w1_speedup_vs_himalaya"]["limit"] == 16.0
    assert goals["banded_w1_speedup_vs_himalaya"]["met"] is False
    steps["banded"]["result"]["shape"]["n"] = 300
    goals = {g["name"]: g for g in mod.evaluate_goals(steps, "gpu")}
    assert goals["banded_w1_speedup_vs_himalaya"]["met"] is None


def test_generator_options_fall_back_and_say_so():
    spec = importlib.util.spec_from_file_location("participant_bench", REPO / "benchmarks" / "participant.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    old_help = "usage: x [--participants P] [--sessions S] [--runs-per-session R] [--trials-per-run T]"
    args, rec = mod.generator_options(old_help, small=False)
    assert args[-6:] == mod.FALLBACK_COUNTS and "--grid" not in args
    assert set(rec["missing_options"]) == {"--bold5000-counts", "--grid", "--image-size"}
    new_help = old_help + " [--bold5000-counts] [--grid X Y Z] [--image-size N]"
    args, rec = mod.generator_options(new_help, small=False)
    assert "--bold5000-counts" in args and args[args.index("--grid") + 1 : args.index("--grid") + 4] == [
        "56",
        "56",
        "36",
    ]
    assert "--sessions" not in args and "missing_options" not in rec


@pytest.mark.slow
def test_cpu_smoke_run_end_to_end(tmp_path):
    """Every step at tiny sizes on the CPU through the real script (about a minute on 2 cores)."""
    out = tmp_path / "out"
    proc = subprocess.run(
        ["bash", str(SCRIPT), "--cpu-smoke", "--work", str(tmp_path / "work")],
        cwd=REPO,
        env=_env(OUT=str(out), OMP_NUM_THREADS="1"),
        capture_output=True,
        text=True,
        timeout=400,
    )
    doc = json.loads((out / "gpu_check.json").read_text())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert list(doc["steps"]) == STEPS and doc["all_steps_ok"] and doc["mode"] == "cpu-smoke"
    st = {k: v["result"] for k, v in doc["steps"].items()}
    assert doc["env"]["cuda_available"] in (False, True) and "torch" in doc["env"]["packages"]
    tests = st["cuda_tests"]
    assert tests["tests"] >= 10 and tests["failures"] == tests["errors"] == 0
    if not doc["env"]["cuda_available"]:
        assert tests["skipped"] == tests["tests"]
    assert set(st["ridge"]["ours"]) == {"fast", "exact"} and st["ridge"]["himalaya"]["seconds"] > 0
    banded = st["banded"]
    assert set(banded["ours"]) == {"per-fold", "hold-out", "cholesky"} and banded["himalaya"]["seconds"] > 0
    assert banded["ratio_himalaya_over_ours"] > 0 and banded["floor"]["per_fold_s"] > banded["floor"]["predictions_s"]
    assert st["featurize"]["all_seconds"] > 0 and st["featurize_compile"]["compile"] is True
    assert st["featurize_compile"]["sample_vs_ref"]["min_corr"] > 0.999
    part = st["participant"]
    assert part["exit_code"] == 0 and part["n_statmaps"] > 0 and part["n_images"] == 22
    assert {"index", "responses", "features", "fit", "report"} <= set(part["steps_seconds"])
    assert all(g["met"] is None for g in doc["goals"])
    assert (out / "gpu_check.log").stat().st_size > 0 and (out / "cuda_tests.xml").exists()
    assert len(list(out.iterdir())) <= 8  # the device tool brings back at most 8 files
