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
import json
import os
import shlex
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gpu_check_env import env_report, parse_junit, read_result  # noqa: E402
from gpu_check_goals import evaluate_goals, planning_line, summary_lines  # noqa: E402
from gpu_check_plan import BENCH, DEFAULT_BUDGET_S, REPO, Step, plan  # noqa: E402
from gpu_check_runner import MIN_STEP_S, SCHEMA, Outcome, Runner  # noqa: E402

__all__ = [
    "BENCH",
    "DEFAULT_BUDGET_S",
    "MIN_STEP_S",
    "REPO",
    "SCHEMA",
    "Outcome",
    "Runner",
    "Step",
    "env_report",
    "evaluate_goals",
    "main",
    "parse_junit",
    "plan",
    "planning_line",
    "read_result",
    "summary_lines",
]


def print_dry_run(steps: list[Step], mode: str, budget: float, out: Path) -> None:
    """The steps, their commands and limits; nothing is run."""
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


def run_all(steps: list[Step], mode: str, budget: float, out: Path, work: Path, python: str) -> int:
    """Run every step (fresh work folder), copy the JUnit file out, append and print the summary."""
    out.mkdir(parents=True, exist_ok=True)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    for f in ("gpu_check.log", "gpu_check.json"):
        (out / f).unlink(missing_ok=True)
    runner = Runner(mode, out, work, budget, python)
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
        print_dry_run(steps, mode, budget, out)
        return 0
    return run_all(steps, mode, budget, out, work, args.python)


if __name__ == "__main__":
    sys.exit(main())
