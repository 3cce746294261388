"""The GPU check's goals (from the issues), judged on the steps' results, and the closing summary.

Part of ``benchmarks/gpu_check.py``. A goal is ``met`` true or false only in ``gpu`` mode at the
goal's size; elsewhere None with a note saying why.
"""

from __future__ import annotations

#: Goal name prefix -> the step that measures it (longest prefix wins).
STEP_OF = {
    "ridge": "ridge",
    "banded": "banded",
    "featurize_": "featurize",
    "featurize_compile": "featurize_compile",
    "participant": "participant",
    "cuda_tests": "cuda_tests",
}


def _get(results: dict, *keys):
    cur = results
    for k in keys:
        if not isinstance(cur, dict) or k not in cur:
            return None
        cur = cur[k]
    return cur


def _cuda_goal(tests: dict) -> dict:
    measured = (
        f"{tests.get('passed')}/{tests.get('tests')} passed, {tests.get('skipped')} skipped, "
        f"{tests.get('failures')} failed, {tests.get('errors')} errors"
    )
    met = tests.get("tests", 0) > 0 and tests.get("failures") == 0 and tests.get("errors") == 0
    return {
        "name": "cuda_tests_all_passed",
        "target": "all CUDA tests pass, none skipped",
        "measured": measured if tests else None,
        "met": (met and tests.get("skipped") == 0) if tests else None,
    }


def _goal(name: str, target: str, limit: float, better: str, measured) -> dict:
    return {"name": name, "target": target, "limit": limit, "better": better, "measured": measured}


def _timed_goals(r: dict) -> list[dict]:
    """The goals with a limit (seconds, ratios, correlations), with what the steps measured."""
    single_ratio = _get(r, "ridge", "ours", "fast", "ratio_himalaya_over_ours")
    return [
        _goal("ridge_w1_fast_seconds", "<= 0.35 s", 0.35, "lower", _get(r, "ridge", "ours", "fast", "seconds")),
        _goal(
            "ridge_w1_fast_speedup_vs_himalaya", ">= 10x himalaya torch_cuda, same run", 10.0, "higher", single_ratio
        ),
        _goal(
            "banded_w1_speedup_vs_himalaya",
            ">= the single-space engine's ratio over himalaya in the same run (16x on CPU)",
            single_ratio or 16.0,
            "higher",
            _get(r, "banded", "ratio_himalaya_over_ours"),
        ),
        _goal(
            "featurize_21x4916_seconds",
            "<= 10 s including JPEG decode",
            10.0,
            "lower",
            _get(r, "featurize", "all21_seconds"),
        ),
        _goal(
            "featurize_compile_21x4916_seconds",
            "<= 10 s including JPEG decode (--compile)",
            10.0,
            "lower",
            _get(r, "featurize_compile", "all21_seconds"),
        ),
        _goal(
            "featurize_compile_same_features",
            "correlation >= 0.999 with the plain run",
            0.999,
            "higher",
            _get(r, "featurize_compile", "sample_vs_ref", "min_corr"),
        ),
        _goal(
            "participant_21_spaces_end_to_end_seconds",
            "<= 180 s for the BOLD5000-sized participant",
            180.0,
            "lower",
            _get(r, "participant", "app_seconds"),
        ),
    ]


def _judge(g: dict, outcomes: dict[str, dict]) -> None:
    """Set ``g['met']`` (and a note) from its measurement and its step's outcome."""
    step = next(v for k, v in sorted(STEP_OF.items(), key=lambda kv: -len(kv[0])) if g["name"].startswith(k))
    g["step"] = step
    o = outcomes.get(step, {})
    if "limit" in g:
        m = g["measured"]
        lower = g.pop("better") == "lower"
        if m is None:
            g["met"] = None
            # a time that ran out of its step's limit is over the goal's (the limits are larger)
            if lower and o.get("status") == "timeout" and (o.get("timeout_s") or 0) >= g["limit"]:
                g["met"] = False
                g["note"] = f"step {step} timed out after {o.get('timeout_s')} s"
        else:
            g["met"] = bool(m <= g["limit"]) if lower else bool(m >= g["limit"])
    if g["met"] is None and "note" not in g and o.get("status") not in (None, "ok"):
        g["note"] = f"step {step}: {o.get('status')}"


def _not_at_goal_size(goals: list[dict], r: dict, mode: str) -> None:
    """Unjudge (met None, with a note) the goals whose step did not run at the goal's size or device."""
    feat_n = _get(r, "featurize", "n_images")
    if mode != "gpu" or (feat_n is not None and feat_n != 4916):
        for g in goals:
            g["met"] = None
            g["note"] = f"{mode}: sizes or device differ from the goal's; not judged"
    banded_n = _get(r, "banded", "shape", "n")
    if banded_n is not None and banded_n != 4916:
        for g in goals:
            if g["name"].startswith("banded"):
                g["met"], g["note"] = None, f"banded ran at n={banded_n}, not W1's 4,916; not judged"
    gen = _get(r, "participant_data")
    if gen and gen.get("missing_options"):
        for g in goals:
            if g["name"].startswith("participant"):
                g["note"] = (
                    "the synthetic generator lacks "
                    + ", ".join(gen["missing_options"])
                    + "; the participant is smaller than BOLD5000's, so this is not the goal's size"
                )
                g["met"] = None


def evaluate_goals(outcomes: dict[str, dict], mode: str) -> list[dict]:
    """The issue's goals, each with the measured value and whether it is met (None: not measured here)."""
    r = {name: o.get("result", {}) for name, o in outcomes.items()}
    goals = [_cuda_goal(r.get("cuda_tests", {}))] + _timed_goals(r)
    for g in goals:
        _judge(g, outcomes)
    _not_at_goal_size(goals, r, mode)
    return goals


def planning_line(doc: dict) -> str | None:
    """The featurize step's 21-encoder time as a planning figure (images/s and the time for 4,916 images)."""
    feat = _get(doc, "steps", "featurize", "result") or {}
    seconds, n = feat.get("all_seconds"), feat.get("n_images")
    if not seconds or not n:
        return None
    per_img, per_enc_img = feat.get("all_img_per_s"), feat.get("all_encoder_img_per_s")
    encoders = round(per_enc_img / per_img) if per_img and per_enc_img else "?"
    k = len(feat.get("single") or {}) or None
    device = feat.get("gpu") or feat.get("device")
    return (
        f"planning: featurization on {device}, {encoders} encoders together: {n} images in {seconds} s "
        f"({feat.get('all_img_per_s')} img/s, {feat.get('all_encoder_img_per_s')} encoder-images/s); "
        f"4,916 images: {feat.get('all_extrapolated_4916_s')} s"
        + ("" if n == 4916 else f" (scaled x 4,916/{n})")
        + (f"; {k} encoders also timed alone" if k else "")
    )


def summary_lines(doc: dict) -> list[str]:
    """The closing lines of the log: each step's status and seconds, each goal, the planning figure."""
    lines = [
        f"gpu_check ({doc['mode']}): {doc['elapsed_seconds']} s of {doc['budget_seconds']} s budget; "
        f"all steps ok: {doc['all_steps_ok']}"
    ]
    for name, o in doc["steps"].items():
        lines.append(
            f"  {name:18s} {o['status']:8s} {o['seconds'] if o['seconds'] is not None else '-':>7} s"
            + (f"  ({o['note']})" if o.get("note") else "")
        )
    lines.append("goals:")
    for g in doc["goals"]:
        met = {True: "MET", False: "MISSED", None: "n/a"}[g["met"]]
        lines.append(f"  {g['name']:42s} {met:6s} measured {g['measured']}  target {g['target']}")
    plan = planning_line(doc)
    if plan:
        lines.append(plan)
    return lines
