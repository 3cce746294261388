"""One BOLD5000-sized synthetic participant end to end, with random-weight Taskonomy encoders.

Two subcommands, so the GPU check can make the data in the background while
other steps use the GPU:

    python benchmarks/participant.py generate OUT [--small] [--json FILE]
    python benchmarks/participant.py run OUT/bids --work DIR [--device cuda] [--tasks ...] [--json FILE]
        [-- APP OPTIONS]

``generate`` writes a synthetic dataset with ``bids_taskenc-synthetic``
(``python -m bids_taskenc.testing.cli``). For BOLD5000's size it asks that
command for the options below, and uses each only when the command's
``--help`` lists it (another branch adds them); whatever it fell back to goes
into the JSON under ``generator``:

* ``--bold5000-counts``: one participant with CSI1's counts (15 sessions of
  9-10 runs, 37 trials a run, 194 volumes, 5,254 trials of 4,916 images).
  Without it: ``--sessions 15 --runs-per-session 10 --trials-per-run 37``
  (5,550 trials of 5,532 images, the nearest the old options reach).
* ``--grid X Y Z``: the voxel grid (default 56 56 36, about 55,000 voxels in
  the brain mask, the paper's cortical count). Without it: the generator's
  fixed small grid, a few thousand voxels.
* ``--image-size N``: the stimulus JPEGs' size (default 375, BOLD5000's photos).
  Without it: the generator's default.

``--small`` makes a tiny dataset instead (CPU smoke runs).

``generate`` also writes one seeded random checkpoint per task (in the
published format) into ``OUT/models``. ``run`` then runs the app's
participant level in this process (``bids_taskenc.cli.run.main``) on
participant CSI1 with those encoders and reports, as JSON, the app's wall time
and the time of each step: BIDS indexing, weights verification, trials,
responses, featurization, ridge fits (all spaces), noise ceiling, NIfTI
writing, surfaces, the rest of the participant (contrasts, ROI tables,
sidecars) and the HTML report.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

#: ``bids_taskenc-synthetic`` options for a BOLD5000-sized participant, if the command has them.
BOLD5000_OPTIONS = {"--bold5000-counts": [], "--grid": ["56", "56", "36"], "--image-size": ["375"]}
#: What the generator is asked for when it lacks ``--bold5000-counts``.
FALLBACK_COUNTS = ["--sessions", "15", "--runs-per-session", "10", "--trials-per-run", "37"]
#: A tiny dataset for CPU smoke runs (22 images, one participant).
SMALL = ["--sessions", "1", "--runs-per-session", "2", "--trials-per-run", "20"]


def _synthetic_cmd() -> list[str]:
    return [sys.executable, "-m", "bids_taskenc.testing.cli"]


def generator_options(help_text: str, small: bool) -> tuple[list[str], dict]:
    """The generator's arguments for this run, and a record of which wished-for options it has."""
    args = ["--participants", "1", "--seed", "0"]
    record: dict = {"size": "small" if small else "bold5000"}
    if small:
        return args + SMALL, record
    has = {opt: re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", help_text) is not None for opt in BOLD5000_OPTIONS}
    record["options_present"] = has
    if has["--bold5000-counts"]:
        args += ["--bold5000-counts"]
    else:
        args += FALLBACK_COUNTS
        record["fallback"] = "no --bold5000-counts: " + " ".join(FALLBACK_COUNTS)
    for opt in ("--grid", "--image-size"):
        if has[opt]:
            args += [opt, *BOLD5000_OPTIONS[opt]]
    missing = [o for o, ok in has.items() if not ok]
    if missing:
        record["missing_options"] = missing
    return args, record


def cmd_generate(ns) -> dict:
    out = Path(ns.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    help_text = subprocess.run(_synthetic_cmd() + ["--help"], capture_output=True, text=True, check=True).stdout
    args, record = generator_options(help_text, ns.small)
    cmd = _synthetic_cmd() + [str(out / "bids")] + args
    print("generate:", " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    record.update(command=cmd[1:], seconds=round(time.perf_counter() - t0, 2), bids_dir=str(out / "bids"))
    record["disk_bytes"] = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    t0 = time.perf_counter()
    record["weights"] = make_weights(ns.tasks, out / "models")
    record["weights_seconds"] = round(time.perf_counter() - t0, 2)
    return record


def make_weights(tasks: list[str] | None, store: Path) -> list[str]:
    """A seeded random checkpoint per task (default the paper's 21) in ``store``, unless one is there."""
    from bids_taskenc.features.taskonomy import PAPER_TASKS, make_random_checkpoint

    store.mkdir(parents=True, exist_ok=True)
    names = []
    for task in PAPER_TASKS if tasks is None else tasks:
        have = sorted(store.glob(f"{task}_encoder-*.pth"))
        names.append((have[0] if have else make_random_checkpoint(task, store, seed=PAPER_TASKS.index(task))).name)
    return names


class StepTimer:
    """Wraps module functions so each call adds its wall time (and this process's CPU time, all
    threads: on a shared machine their ratio is the share of the CPUs the step got) to a named step."""

    def __init__(self, sync):
        self.seconds: dict[str, float] = {}
        self.cpu_seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._sync = sync
        self._undo = []

    def wrap(self, module: str, name: str, step: str):
        mod = importlib.import_module(module)
        original = getattr(mod, name)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                self._sync()
                self.seconds[step] = self.seconds.get(step, 0.0) + time.perf_counter() - t0
                self.cpu_seconds[step] = self.cpu_seconds.get(step, 0.0) + time.process_time() - c0
                self.calls[step] = self.calls.get(step, 0) + 1

        setattr(mod, name, timed)
        self._undo.append((mod, name, original))

    def restore(self):
        for mod, name, original in reversed(self._undo):
            setattr(mod, name, original)
        self._undo.clear()


#: (module, function, step): the functions the participant level calls by module attribute.
TIMED = [
    ("bids_taskenc.bids.dataset", "open_layout", "index"),
    ("bids_taskenc.bids.dataset", "select_runs", "index"),
    ("bids_taskenc.bids.preprocessed", "open_derivatives", "index"),
    ("bids_taskenc.features.registry", "resolve_feature_spaces", "weights"),
    ("bids_taskenc.workflow.inputs", "build_trials", "trials"),
    ("bids_taskenc.workflow.inputs", "attach_stimulus_paths", "trials"),
    ("bids_taskenc.workflow.inputs", "find_preprocessed", "trials"),
    # the response models, as the registry (responses/registry.py) resolves them at each call
    ("bids_taskenc.responses.travg", "travg_model", "responses"),
    ("bids_taskenc.responses.lsa", "lsa_model", "responses"),
    ("bids_taskenc.responses.betas", "betas_model", "responses"),
    ("bids_taskenc.workflow.data", "featurize", "features"),
    ("bids_taskenc.workflow.fit", "fit_encoding_model", "fit"),
    ("bids_taskenc.workflow.noise", "noise_ceiling", "noise_ceiling"),
    ("bids_taskenc.workflow.noise", "split_half_reliability", "noise_ceiling"),
    ("bids_taskenc.workflow.writer", "write_statmap", "write_maps"),
    ("bids_taskenc.workflow.writer", "write_mask", "write_maps"),
    ("bids_taskenc.workflow.writer", "project_statmaps", "surfaces"),
    ("bids_taskenc.cli.run", "build_level_reports", "report"),
    ("bids_taskenc.workflow.participant", "run_participant", "participant"),
]


def app_argv(ns, names: list[str], store: Path, work: Path) -> list[str]:
    """The app's command line: participant CSI1, these spaces, the weights store offline, seed 0."""
    return [
        str(Path(ns.bids)),
        str(work / "derivatives"),
        "participant",
        "--participant-label",
        "CSI1",
        "--feature-spaces",
        *names,
        "--taskonomy-weights",
        str(store),
        "--offline",
        "--work-dir",
        str(work / "work"),
        "--device",
        ns.device,
        "--precision",
        ns.precision,
        "--seed",
        "0",
        *ns.app_args,
    ]


def timed_app(argv: list[str], timer: StepTimer) -> tuple[int, float, list]:
    """Run the app with every ``TIMED`` function wrapped; its exit code, wall time and participant summaries."""
    from bids_taskenc.cli import run as app

    summaries: list = []
    for module, name, step in TIMED:
        timer.wrap(module, name, step)
    # keep what run_participant returns (images, voxels, per-space fit seconds)
    from bids_taskenc.workflow import participant as part

    inner = part.run_participant

    def keep(*args, **kwargs):
        summary = inner(*args, **kwargs)
        summaries.append(summary)
        return summary

    part.run_participant = keep
    print("app: bids_taskenc", " ".join(argv[:3]), "...", flush=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # one CustomWeightsWarning per random checkpoint
            t0 = time.perf_counter()
            code = app.main(argv)
            t_app = time.perf_counter() - t0
    finally:
        part.run_participant = inner
        timer.restore()
    return code, t_app, summaries


def step_seconds(timer: StepTimer) -> dict[str, float]:
    """Each step's seconds, and ``rest_of_participant`` (contrasts, ROI tables, sidecars, the split file,
    the staging rename): the participant's time outside its timed steps."""
    steps = {k: round(v, 3) for k, v in timer.seconds.items()}
    inside = sum(v for k, v in timer.seconds.items() if k not in ("index", "weights", "report", "participant"))
    if "participant" in timer.seconds:
        steps["rest_of_participant"] = round(timer.seconds["participant"] - inside, 3)
    return steps


def cmd_run(ns) -> dict:
    import torch

    from bids_taskenc.features.taskonomy import PAPER_TASKS

    tasks = [] if ns.feature_spaces else list(ns.tasks or PAPER_TASKS)
    names = list(ns.feature_spaces or []) + [f"taskonomy:{t}" for t in tasks]
    work = Path(ns.work)
    if work.exists():
        shutil.rmtree(work)
    store = ns.models or Path(ns.bids).parent / "models"
    t0 = time.perf_counter()
    make_weights(tasks, store)  # normally made by ``generate`` already
    t_weights = time.perf_counter() - t0
    cuda = ns.device.startswith("cuda")
    timer = StepTimer(torch.cuda.synchronize if cuda else (lambda: None))
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    code, t_app, summaries = timed_app(app_argv(ns, names, store, work), timer)
    steps = step_seconds(timer)
    summary = summaries[0] if summaries else None
    task_summary: dict = next(iter(summary.tasks.values()), {}) if summary is not None else {}
    out = work / "derivatives"
    res = {
        "exit_code": code,
        "app_seconds": round(t_app, 2),
        "weights_prep_seconds": round(t_weights, 2),
        "device": ns.device,
        "precision": ns.precision,
        "feature_spaces": names,
        "n_spaces": len(names),
        "steps_seconds": steps,
        "step_calls": timer.calls,
        "steps_cpu_seconds": {k: round(v, 3) for k, v in timer.cpu_seconds.items()},
        "n_images": task_summary.get("n_images"),
        "n_voxels": task_summary.get("n_voxels"),
        "fit_seconds_per_space": {k: v.get("seconds") for k, v in task_summary.get("feature_spaces", {}).items()},
        "n_statmaps": len(list(out.rglob("*_statmap.nii.gz"))) if out.exists() else 0,
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
    }
    if cuda:
        res["gpu"] = torch.cuda.get_device_name()
        res["gpu_peak_allocated_gb"] = round(torch.cuda.max_memory_allocated() / 1e9, 2)
    print(
        f"participant: exit {code}, {res['app_seconds']} s end to end "
        f"({res['n_images']} images, {res['n_voxels']} voxels, {len(names)} spaces); steps {steps}",
        flush=True,
    )
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate", help="write the synthetic dataset")
    g.add_argument("out", type=Path, help="folder (replaced); the BIDS dataset goes to OUT/bids")
    g.add_argument("--small", action="store_true", help="a tiny dataset (CPU smoke runs)")
    g.add_argument(
        "--tasks",
        nargs="*",
        default=None,
        help="random checkpoints to write into OUT/models (default the paper's 21; none: --tasks alone)",
    )
    g.add_argument("--json", type=Path)
    r = sub.add_parser("run", help="run the app's participant level on it, timed")
    r.add_argument("bids", type=Path)
    r.add_argument("--work", type=Path, required=True, help="folder (replaced) for weights, work dir and outputs")
    r.add_argument("--models", type=Path, help="weights store (default BIDS/../models, as generate writes it)")
    r.add_argument("--device", default="cuda")
    r.add_argument("--precision", default="fast", choices=["exact", "fast"])
    r.add_argument("--tasks", nargs="+", help="Taskonomy tasks (default the paper's 21)")
    r.add_argument(
        "--feature-spaces",
        nargs="+",
        metavar="NAME",
        help="these spaces instead of Taskonomy encoders (e.g. baseline:pixels for a CPU smoke run)",
    )
    r.add_argument("--json", type=Path)
    argv = list(sys.argv[1:] if argv is None else argv)
    app_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    ns = ap.parse_args(argv[: len(argv) - len(app_args) - (1 if "--" in argv else 0)])
    ns.app_args = app_args  # after --: more options for the app (run)
    res = cmd_generate(ns) if ns.cmd == "generate" else cmd_run(ns)
    if ns.json:
        ns.json.parent.mkdir(parents=True, exist_ok=True)
        ns.json.write_text(json.dumps(res, indent=2))
    print(json.dumps(res))
    return 0 if res.get("exit_code", 0) == 0 else 1


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
