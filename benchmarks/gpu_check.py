"""The whole GPU check in one run: steps with time limits, one JSON and one log.

Started by ``benchmarks/gpu_check.sh`` (which installs the carried wheels first);
see that file's header for how to prepare and run it. Each step is a separate
process with its own time limit; a step that fails or runs out of time is
recorded and the next one runs. All limits together stay inside
``--budget`` seconds (default 470 in ``gpu`` mode, under the device tool's
10-minute command limit).

Steps (``--dry-run`` prints them with their commands and limits):

1. ``env``: Python, torch, CUDA, the GPU (nvidia-smi) and the package versions.
2. ``cuda_tests``: ``pytest -m cuda tests/cuda`` (GPU vs CPU ridge, bf16 features,
   LSA, memory budget); skipped where torch sees no GPU.
3. ``ridge``: ``benchmarks/ridge.py`` at W1 in ``fast`` and ``exact`` against himalaya.
4. ``banded``: ``benchmarks/banded.py`` at W1 (two sets of 2,048 features), our three
   CV solvers, against himalaya's ``MultipleKernelRidgeCV``, and its floors.
5. ``featurize``: ``benchmarks/featurize.py``, 21 encoders x 4,916 JPEGs.
6. ``participant``: ``benchmarks/participant.py run``, one BOLD5000-sized
   synthetic participant with 21 random-weight Taskonomy encoders, end to end.
   Its data (``participant_data``: ``benchmarks/participant.py generate``) is
   made by a background process started before step 2, at low CPU priority.
7. ``featurize_compile``: step 5 with ``--compile``; its features are compared
   with step 5's.

``--cpu-smoke`` runs every step at tiny sizes on the CPU (the CUDA tests skip),
to prove the check works end to end except for CUDA itself.

Output in ``--out`` (default ``$OUT``, else ``./gpu_check_out``):
``gpu_check.json`` (rewritten after every step) and ``gpu_check.log`` (every
step's output). The exit code is 0 when every step ran to completion, 1 when
one failed or ran out of time; the goals are reported in the JSON, not in the
exit code.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "benchmarks"
SCHEMA = 1
DEFAULT_BUDGET_S = {"gpu": 470, "cpu-smoke": 300}
#: Smallest time limit a step is started with; below it the step is skipped.
MIN_STEP_S = 10
PAPER_TASK_COUNT = 21


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


@dataclass
class Outcome:
    name: str
    description: str
    command: list[str]
    status: str = "pending"  # ok | failed | timeout | skipped | pending | running
    rc: int | None = None
    seconds: float | None = None
    timeout_s: float | None = None
    started_at_s: float | None = None
    result: dict = field(default_factory=dict)
    note: str | None = None
    log_tail: str = ""

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


def plan(mode: str, work: Path, python: str) -> list[Step]:
    """The steps of ``mode`` ('gpu' or 'cpu-smoke'), their commands and limits."""
    py = [python]
    smoke = mode == "cpu-smoke"
    workers = str(min(16, os.cpu_count() or 2))
    if smoke:
        ridge = ["--device", "cpu", "--n", "300", "--p", "64", "--v", "400", "--repeats", "1"]
        banded = ["--device", "cpu", "--n", "300", "--p", "40", "--v", "100", "--threads", "1"]
        feat = ["--device", "cpu", "--n-images", "1", "--batch-size", "1", "--workers", "2", "--tasks", "normal"]
        single: list[str] = []
        gen = ["--small", "--tasks"]
        run = ["--device", "cpu", "--feature-spaces", "baseline:pixels"]
    else:
        ridge = ["--device", "cuda", "--repeats", "3"]
        banded = ["--device", "cuda"]
        feat = ["--device", "cuda", "--n-images", "4916", "--batch-size", "256", "--workers", workers]
        single = ["normal", "class_object"]
        gen = []
        run = ["--device", "cuda", "--precision", "fast"]
    data = work / "participant_data"
    return [
        Step(
            "env",
            "Python, torch, CUDA, GPU and package versions",
            py + [str(BENCH / "gpu_check.py"), "--env-json", str(work / "env.json")],
            max_s=30,
            reserve_s=15,
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
            py
            + [
                "-m",
                "pytest",
                "-m",
                "cuda",
                str(REPO / "tests" / "cuda"),
                "-q",
                "-p",
                "no:cacheprovider",
                "-o",
                "addopts=-ra",
                f"--junitxml={work / 'cuda_tests.xml'}",
            ],
            max_s=90,
            reserve_s=45,
            result_file=work / "cuda_tests.xml",
            parse="junit",
        ),
        Step(
            "ridge",
            "benchmarks/ridge.py W1 shape (smoke: tiny), fast and exact, vs himalaya",
            py
            + [
                str(BENCH / "ridge.py"),
                *ridge,
                "--precision",
                "fast",
                "exact",
                "--no-sklearn",
                "--json",
                str(work / "ridge.json"),
            ],
            max_s=100,
            reserve_s=45,
            result_file=work / "ridge.json",
        ),
        Step(
            "banded",
            "benchmarks/banded.py W1 shape (smoke: tiny), our three CV solvers, vs himalaya MultipleKernelRidgeCV",
            py
            + [
                str(BENCH / "banded.py"),
                *banded,
                "--precision",
                "fast",
                "--cv-solver",
                "per-fold",
                "hold-out",
                "cholesky",
                "--json",
                str(work / "banded.json"),
            ],
            max_s=150,
            reserve_s=40,
            result_file=work / "banded.json",
        ),
        Step(
            "featurize",
            "benchmarks/featurize.py, 21 encoders x 4,916 JPEGs (smoke: 1 x 1)",
            py
            + [
                str(BENCH / "featurize.py"),
                *feat,
                "--single",
                *single,
                "--sample-out",
                str(work / "features_sample.npz"),
                "--json",
                str(work / "featurize.json"),
            ],
            max_s=75,
            reserve_s=40,
            result_file=work / "featurize.json",
        ),
        Step(
            "participant",
            "benchmarks/participant.py run: one participant end to end, 21 Taskonomy spaces "
            "(smoke: tiny, baseline:pixels)",
            py
            + [
                str(BENCH / "participant.py"),
                "run",
                str(data / "bids"),
                "--models",
                str(data / "models"),
                "--work",
                str(work / "participant"),
                *run,
                "--json",
                str(work / "participant.json"),
            ],
            max_s=210,
            reserve_s=150,
            result_file=work / "participant.json",
            needs="participant_data",
        ),
        Step(
            "featurize_compile",
            "step featurize with --compile, features compared with it",
            py
            + [
                str(BENCH / "featurize.py"),
                *feat,
                "--single",
                "--compile",
                "--sample-ref",
                str(work / "features_sample.npz"),
                "--json",
                str(work / "featurize_compile.json"),
            ],
            max_s=150,
            reserve_s=30,
            result_file=work / "featurize_compile.json",
        ),
    ]


# ---------------------------------------------------------------------------- environment


def env_report() -> dict:
    """What the machine is: Python, torch/CUDA/GPU, CPU count, versions of the packages the steps use."""
    import importlib
    import platform

    info: dict = {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "packages": {},
        "import_errors": {},
    }
    for mod in (
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
    ):
        try:
            m = importlib.import_module(mod)
            info["packages"][mod] = getattr(m, "__version__", "?")
        except Exception as exc:  # noqa: BLE001 - any import failure is worth recording
            info["import_errors"][mod] = f"{type(exc).__name__}: {exc}"
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
    smi = shutil.which("nvidia-smi")
    if smi:
        q = "name,driver_version,memory.total,memory.used,clocks.sm,clocks.mem,temperature.gpu,power.draw"
        try:
            out = subprocess.run(
                [smi, f"--query-gpu={q}", "--format=csv,noheader"], capture_output=True, text=True, timeout=20
            )
            info["nvidia_smi"] = out.stdout.strip() or out.stderr.strip()
        except (OSError, subprocess.SubprocessError) as exc:
            info["nvidia_smi"] = f"failed: {exc}"
    try:
        info["git_commit"] = (
            subprocess.run(
                ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        info["git_commit"] = None
    return info


# ---------------------------------------------------------------------------- results


def parse_junit(path: Path) -> dict:
    """Counts and per-test outcomes of a pytest ``--junitxml`` file."""
    root = ET.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    res = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
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
    if step.result_file is None or not step.result_file.exists():
        return {}
    try:
        if step.parse == "junit":
            return parse_junit(step.result_file)
        return json.loads(step.result_file.read_text())
    except (ValueError, ET.ParseError, OSError) as exc:
        return {"unreadable": f"{step.result_file.name}: {exc}"}


def _get(results: dict, *keys):
    cur = results
    for k in keys:
        if not isinstance(cur, dict) or k not in cur:
            return None
        cur = cur[k]
    return cur


def evaluate_goals(outcomes: dict[str, dict], mode: str) -> list[dict]:
    """The issue's goals, each with the measured value and whether it is met (None: not measured here)."""
    r = {name: o.get("result", {}) for name, o in outcomes.items()}
    tests = r.get("cuda_tests", {})
    feat_n = _get(r, "featurize", "n_images")
    goals = [
        {
            "name": "cuda_tests_all_passed",
            "target": "all CUDA tests pass, none skipped",
            "measured": (
                f"{tests.get('passed')}/{tests.get('tests')} passed, {tests.get('skipped')} skipped, "
                f"{tests.get('failures')} failed, {tests.get('errors')} errors"
            )
            if tests
            else None,
            "met": (
                tests.get("tests", 0) > 0
                and tests.get("failures") == 0
                and tests.get("errors") == 0
                and tests.get("skipped") == 0
            )
            if tests
            else None,
        },
        {
            "name": "ridge_w1_fast_seconds",
            "target": "<= 0.35 s",
            "limit": 0.35,
            "better": "lower",
            "measured": _get(r, "ridge", "ours", "fast", "seconds"),
        },
        {
            "name": "ridge_w1_fast_speedup_vs_himalaya",
            "target": ">= 10x himalaya torch_cuda, same run",
            "limit": 10.0,
            "better": "higher",
            "measured": _get(r, "ridge", "ours", "fast", "ratio_himalaya_over_ours"),
        },
        {
            "name": "banded_w1_speedup_vs_himalaya",
            "target": ">= the single-space engine's ratio over himalaya in the same run (16x on CPU)",
            "limit": _get(r, "ridge", "ours", "fast", "ratio_himalaya_over_ours") or 16.0,
            "better": "higher",
            "measured": _get(r, "banded", "ratio_himalaya_over_ours"),
        },
        {
            "name": "featurize_21x4916_seconds",
            "target": "<= 10 s including JPEG decode",
            "limit": 10.0,
            "better": "lower",
            "measured": _get(r, "featurize", "all21_seconds"),
        },
        {
            "name": "featurize_compile_21x4916_seconds",
            "target": "<= 10 s including JPEG decode (--compile)",
            "limit": 10.0,
            "better": "lower",
            "measured": _get(r, "featurize_compile", "all21_seconds"),
        },
        {
            "name": "featurize_compile_same_features",
            "target": "correlation >= 0.999 with the plain run",
            "limit": 0.999,
            "better": "higher",
            "measured": _get(r, "featurize_compile", "sample_vs_ref", "min_corr"),
        },
        {
            "name": "participant_21_spaces_end_to_end_seconds",
            "target": "<= 180 s for the BOLD5000-sized participant",
            "limit": 180.0,
            "better": "lower",
            "measured": _get(r, "participant", "app_seconds"),
        },
    ]
    step_of = {
        "ridge": "ridge",
        "banded": "banded",
        "featurize_": "featurize",
        "featurize_compile": "featurize_compile",
        "participant": "participant",
        "cuda_tests": "cuda_tests",
    }
    for g in goals:
        step = next(v for k, v in sorted(step_of.items(), key=lambda kv: -len(kv[0])) if g["name"].startswith(k))
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
    return goals


# ---------------------------------------------------------------------------- running


class Runner:
    def __init__(self, mode: str, out: Path, work: Path, budget_s: float, python: str):
        self.mode, self.out, self.work, self.budget_s, self.python = mode, out, work, budget_s, python
        self.t0 = time.monotonic()
        self.deadline = self.t0 + budget_s
        self.started_utc = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        self.log_path = out / "gpu_check.log"
        self.json_path = out / "gpu_check.json"
        self.outcomes: dict[str, Outcome] = {}
        self.min_step_s = MIN_STEP_S
        self.background: dict[str, tuple[subprocess.Popen, Step, float, object]] = {}

    # -- output
    def say(self, msg: str) -> None:
        line = f"[gpu_check {time.monotonic() - self.t0:6.1f}s] {msg}"
        print(line, flush=True)
        with open(self.log_path, "a") as fh:
            fh.write(line + "\n")

    def write_json(self, final: bool = False) -> dict:
        doc = {
            "schema": SCHEMA,
            "mode": self.mode,
            "started_utc": self.started_utc,
            "finished_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds") if final else None,
            "elapsed_seconds": round(time.monotonic() - self.t0, 1),
            "budget_seconds": self.budget_s,
            "work_dir": str(self.work),
            "log": self.log_path.name,
            "steps": {n: o.as_dict() for n, o in self.outcomes.items()},
        }
        doc["env"] = self.outcomes["env"].result if "env" in self.outcomes else {}
        doc["goals"] = evaluate_goals(doc["steps"], self.mode)
        doc["all_steps_ok"] = all(o.status == "ok" for o in self.outcomes.values())
        tmp = self.json_path.with_suffix(".json.part")
        tmp.write_text(json.dumps(doc, indent=2, default=str))
        os.replace(tmp, self.json_path)
        return doc

    # -- processes
    def _env(self) -> dict:
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        env.setdefault("MPLBACKEND", "Agg")
        return env

    def _popen(self, step: Step, log_fh) -> subprocess.Popen:
        cmd = list(step.command)
        nice = shutil.which("nice")
        if step.nice and nice:
            cmd = [nice, "-n", str(step.nice)] + cmd
        # own process group: a time-out kills the step and everything it started
        return subprocess.Popen(
            cmd,
            cwd=REPO,
            env=self._env(),
            stdout=log_fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    @staticmethod
    def _kill(proc: subprocess.Popen) -> None:
        for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def _tail(self, start: int) -> str:
        with open(self.log_path, "rb") as fh:
            fh.seek(start)
            text = fh.read().decode("utf-8", "replace")
        return text[-1500:]

    def start_background(self, step: Step) -> None:
        o = Outcome(
            step.name,
            step.description,
            step.command,
            status="running",
            started_at_s=round(time.monotonic() - self.t0, 1),
        )
        self.outcomes[step.name] = o
        bg_log = self.work / f"{step.name}.log"
        fh = open(bg_log, "w")
        proc = self._popen(step, fh)
        ended: dict = {}

        def watch():
            proc.wait()
            ended["t"] = time.monotonic()

        threading.Thread(target=watch, daemon=True).start()
        self.background[step.name] = (proc, step, time.monotonic(), fh, ended)
        self.say(f"{step.name}: started in the background (nice {step.nice}); output in {bg_log}")
        self.write_json()

    def finish_background(self, name: str, timeout_s: float) -> None:
        proc, step, t_start, fh, ended = self.background.pop(name)
        o = self.outcomes[name]
        try:
            proc.wait(max(0.0, timeout_s))
        except subprocess.TimeoutExpired:
            self._kill(proc)
            o.note = "still running when the step that needs it ran out of time"
        fh.close()
        o.seconds = round(ended.get("t", time.monotonic()) - t_start, 1)
        o.rc = proc.returncode
        o.status = "ok" if proc.returncode == 0 else ("timeout" if o.note else "failed")
        o.result = read_result(step)
        text = (self.work / f"{name}.log").read_text(errors="replace")
        o.log_tail = text[-1500:]
        with open(self.log_path, "a") as log:
            log.write(f"===== {name} (background) output =====\n{text}\n===== end {name} =====\n")
        self.say(f"{name}: {o.status} (rc {o.rc}, {o.seconds} s)")

    def limit(self, step: Step, reserve_after: float) -> float:
        """Seconds ``step`` may run: its own limit, less what the later steps keep, but at least
        its own reserve while the budget lasts."""
        remaining = self.deadline - time.monotonic()
        limit = min(step.max_s, remaining - reserve_after)
        if limit < step.reserve_s:
            limit = min(step.max_s, step.reserve_s, remaining)
        return max(0.0, limit)

    def run_step(self, step: Step, reserve_after: float) -> Outcome:
        o = Outcome(step.name, step.description, step.command)
        self.outcomes[step.name] = o
        limit = self.limit(step, reserve_after)
        o.timeout_s = round(limit, 1)
        if step.needs:
            dep = self.outcomes.get(step.needs)
            if step.needs in self.background:
                self.say(f"{step.name}: waiting for {step.needs}")
                self.finish_background(step.needs, limit - self.min_step_s)
                dep = self.outcomes[step.needs]
                limit = self.limit(step, reserve_after)
                o.timeout_s = round(limit, 1)
            if dep is None or dep.status != "ok":
                o.status, o.note = "skipped", f"{step.needs} did not finish ({dep.status if dep else 'not run'})"
                self.say(f"{step.name}: skipped ({o.note})")
                self.write_json()
                return o
        if limit < self.min_step_s:
            o.status, o.note = "skipped", f"no time left in the {self.budget_s:.0f} s budget"
            self.say(f"{step.name}: skipped ({o.note})")
            self.write_json()
            return o
        if step.result_file is not None and step.result_file.exists():
            step.result_file.unlink()
        self.say(f"{step.name}: start (limit {limit:.0f} s): {shlex.join(step.command)}")
        with open(self.log_path, "a") as fh:
            fh.write(f"===== {step.name} =====\n")
            fh.flush()
            start = fh.tell()
            o.started_at_s = round(time.monotonic() - self.t0, 1)
            t = time.monotonic()
            proc = self._popen(step, fh)
            try:
                proc.wait(limit)
                o.status = "ok" if proc.returncode == 0 else "failed"
            except subprocess.TimeoutExpired:
                self._kill(proc)
                o.status, o.note = "timeout", f"killed after {limit:.0f} s"
            o.seconds = round(time.monotonic() - t, 1)
            o.rc = proc.returncode
        with open(self.log_path, "a") as fh:
            fh.write(f"===== end {step.name}: {o.status} rc {o.rc} {o.seconds} s =====\n")
        o.result = read_result(step)
        o.log_tail = self._tail(start)
        self.say(f"{step.name}: {o.status} (rc {o.rc}, {o.seconds} s)")
        self.write_json()
        return o

    def run(self, steps: list[Step]) -> dict:
        fg = [s for s in steps if not s.background]
        for step in steps:
            if step.background:
                self.start_background(step)
                continue
            later = fg[fg.index(step) + 1 :]
            self.run_step(step, sum(s.reserve_s for s in later))
        for name in list(self.background):  # a background step nothing waited for
            self.finish_background(name, 0)
        return self.write_json(final=True)


def summary_lines(doc: dict) -> list[str]:
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
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--dry-run", action="store_true", help="print the steps, their commands and limits; run nothing")
    ap.add_argument("--cpu-smoke", action="store_true", help="every step at tiny sizes on the CPU")
    ap.add_argument("--out", type=Path, default=None, help="results folder (default $OUT, else ./gpu_check_out)")
    ap.add_argument(
        "--work",
        type=Path,
        default=None,
        help="scratch folder for data and step results (default <tmp>/gpu_check_work)",
    )
    ap.add_argument("--budget", type=float, default=None, help="seconds for all steps (default 470; smoke 300)")
    ap.add_argument("--python", default=sys.executable, help="interpreter of the steps")
    ap.add_argument("--env-json", type=Path, help=argparse.SUPPRESS)  # the env step itself
    args = ap.parse_args(argv)

    if args.env_json:
        args.env_json.parent.mkdir(parents=True, exist_ok=True)
        info = env_report()
        args.env_json.write_text(json.dumps(info, indent=2))
        print(json.dumps(info, indent=2))
        return 0

    mode = "cpu-smoke" if args.cpu_smoke else "gpu"
    budget = args.budget or DEFAULT_BUDGET_S[mode]
    out = (args.out or Path(os.environ.get("OUT") or "gpu_check_out")).resolve()
    work = (args.work or Path(os.environ.get("TMPDIR", "/tmp")) / "gpu_check_work").resolve()
    steps = plan(mode, work, args.python)
    if args.dry_run:
        fg = [s for s in steps if not s.background]
        print(
            f"gpu_check {mode}: {len(fg)} steps and 1 background step, budget {budget:.0f} s; "
            f"results to {out}/gpu_check.json and gpu_check.log"
        )
        k = 0
        for s in steps:
            if s.background:
                print(f"  bg {s.name}: {s.description} [starts first, waited for by the step that needs it]")
            else:
                k += 1
                print(f"  {k}. {s.name}: {s.description} [limit {s.max_s:.0f} s]")
            print(f"       {shlex.join(s.command)}")
        return 0

    out.mkdir(parents=True, exist_ok=True)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    for f in ("gpu_check.log", "gpu_check.json"):
        (out / f).unlink(missing_ok=True)
    runner = Runner(mode, out, work, budget, args.python)
    runner.say(f"mode {mode}, budget {budget:.0f} s, out {out}, work {work}")
    doc = runner.run(steps)
    junit = work / "cuda_tests.xml"
    if junit.exists():
        shutil.copy(junit, out / "cuda_tests.xml")
    lines = summary_lines(doc)
    with open(runner.log_path, "a") as fh:
        fh.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if doc["all_steps_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
