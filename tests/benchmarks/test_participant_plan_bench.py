"""benchmarks/participant_plan.py's arithmetic (sample, fill, voxel line, the plan's scaling) and the GPU
check's planning line, on made-up measurements: no app run, no timing."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH))
    try:
        yield (
            importlib.import_module("participant_plan"),
            importlib.import_module("plan_features"),
            importlib.import_module("gpu_check_goals"),
        )
    finally:
        sys.path.remove(str(BENCH))


def test_sample_is_seeded_disjoint_and_clipped(bench):
    _, pf, _ = bench
    rows, warm = pf.sample_indices(100, 16, 2, seed=3)
    again, warm_again = pf.sample_indices(100, 16, 2, seed=3)
    assert np.array_equal(rows, again) and np.array_equal(warm, warm_again)
    assert len(rows) == 16 and len(warm) == 2 and not set(rows) & set(warm)
    assert np.all(np.diff(rows) > 0)
    rows, warm = pf.sample_indices(5, 16, 2, seed=0)
    assert len(rows) == 5 and len(warm) == 0


def test_fill_keeps_the_computed_rows(bench):
    _, pf, _ = bench
    computed = np.arange(12, dtype=np.float32).reshape(3, 4)
    rows = np.array([1, 4, 7])
    out = pf.filled(computed, rows, 10, 4, np.random.default_rng(0))
    assert out.shape == (10, 4) and out.dtype == np.float32 and np.isfinite(out).all()
    assert np.array_equal(out[rows], computed)
    noise = pf.filled(None, rows[:0], 10, 4, np.random.default_rng(0))
    assert noise.shape == (10, 4)


def test_voxel_line_and_its_fallbacks(bench):
    pp, _, _ = bench
    value, how = pp.line_at([(1000, 10.0), (3000, 30.0)], 5000)
    assert value == pytest.approx(50.0) and "line through 1,000 and 3,000" in how
    value, how = pp.line_at([(1000, 30.0), (3000, 10.0)], 5000)
    assert value == pytest.approx(30.0) and "largest measured kept" in how
    value, how = pp.line_at([(2000, 7.0)], 5000)
    assert value == pytest.approx(7.0) and "not scaled" in how


def _run(voxels: int, fit: float) -> dict:
    steps = {"index": 1.0, "weights": 2.0, "trials": 3.0, "responses": voxels / 1000, "features": 5.0}
    steps.update(fit=2 * fit, noise_ceiling=1.0, write_maps=voxels / 1000, surfaces=0.5, report=6.0)
    steps.update(rest_of_participant=4.0, participant=40.0)
    return {
        "n_voxels": voxels,
        "n_images": 4916,
        "exit_code": 0,
        "app_seconds": 200.0,
        "steps_seconds": steps,
        "fit_seconds_per_space": {"taskonomy:autoencoding": fit, "taskonomy:curvature": fit + 2},
    }


def test_plan_scales_what_it_says(bench):
    pp, _, _ = bench
    mode = {"precision_used": ["fp32"], "warmup_seconds": 10.0, "sample_seconds": 32.0, "decode_and_rest_seconds": 2}
    mode["encoder_seconds"] = {"taskonomy:normal": 20.0, "taskonomy:jigsaw": 10.0}
    fast = dict(mode, sample_seconds=16.0, precision_used=["bf16-autocast-cpu"])
    feat = {"n_images": 4916, "n_sample": 16, "n_warm": 2, "modes": {"fast": fast, "exact": mode}}
    records = [{"grid": "a", "run": _run(1000, 10.0), "features": feat}, {"grid": "b", "run": _run(3000, 30.0)}]
    p = pp.plan(records, 5000, 21)
    assert list(p["precisions"]) == ["exact", "fast"]
    exact = p["precisions"]["exact"]
    assert exact["features_total"] == pytest.approx(10.0 + 32.0 * 4916 / 16)
    normal = next(r for r in exact["features_rows"] if r[0] == "features normal")
    assert normal[1] == pytest.approx(20.0 * 4916 / 16)
    rows = {r[0]: r for r in p["shared_rows"]}
    assert rows["fit autoencoding"][1] == pytest.approx(50.0) and rows["fit curvature"][1] == pytest.approx(52.0)
    assert rows["fit, the other 19 spaces"][1] == pytest.approx(51.0 * 19)
    assert rows["write_maps"][1] == pytest.approx(5.0 * 21 / 2) and "x 21/2" in rows["write_maps"][2]
    assert rows["report"][1] == pytest.approx(6.0) and "not scaled" in rows["report"][2]
    assert p["fit_total"] == pytest.approx(50 + 52 + 51 * 19)
    shared = sum(r[1] for r in p["shared_rows"])
    assert exact["total"] == pytest.approx(exact["features_total"] + shared)
    assert p["precisions"]["fast"]["total"] < exact["total"]


def test_fitted_subset_spans_the_contrast_groups(bench):
    pp, _, _ = bench
    from bids_taskenc.features.taskonomy import PAPER_TASKS, TASK_GROUPS

    assert {TASK_GROUPS[t] for t in pp.fit_tasks(2)} == {"2D", "3D"}
    assert pp.fit_tasks(21) == list(PAPER_TASKS)


def test_gpu_check_prints_the_featurization_planning_line(bench):
    _, _, goals = bench
    result = {"n_images": 4916, "all_seconds": 12.5, "all_img_per_s": 393.3, "all_encoder_img_per_s": 8259.3}
    line = goals.planning_line({"steps": {"featurize": {"result": dict(result, device="cuda", gpu="H200")}}})
    assert "21 encoders" in line and "4916 images in 12.5 s" in line and "H200" in line
    assert goals.planning_line({"steps": {"featurize": {"result": {}}}}) is None
