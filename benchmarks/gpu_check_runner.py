"""The GPU check's runner: each step in its own process group with its own time limit, the shared budget,
background steps, and ``gpu_check.json`` / ``gpu_check.log`` rewritten after every step.

Part of ``benchmarks/gpu_check.py``. A step that fails or runs out of time is recorded and the next one runs.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shlex
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpu_check_env import read_result
from gpu_check_goals import evaluate_goals
from gpu_check_plan import REPO, Step

SCHEMA = 1
#: Smallest time limit a step is started with; below it the step is skipped.
MIN_STEP_S = 10


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
        self.background: dict[str, tuple[subprocess.Popen, Step, float, Any, dict]] = {}

    # -- output
    def say(self, msg: str) -> None:
        line = f"[gpu_check {time.monotonic() - self.t0:6.1f}s] {msg}"
        print(line, flush=True)
        with open(self.log_path, "a") as fh:
            fh.write(line + "\n")

    def write_json(self, final: bool = False) -> dict:
        doc: dict[str, Any] = {
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
