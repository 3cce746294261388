"""The whole real ds001499 participant CSI1 through the app: real text tree, synthetic images, planted truth.

    python benchmarks/real_tree.py [--archive TGZ] [--out DIR] [--sessions 03 04] [--json FILE] [--keep]

``--archive`` defaults to ``../shared/real/ds001499/ds001499-CSI1-text.tgz`` (every text file of
ds001499 for CSI1, every confounds file included); the project's own copy
(``tests/data/ds001499_sub-CSI1``) holds the confounds of sessions 03 and 04 only, so with it pass
``--sessions 03 04 16``. The tree is built by ``bids_taskenc.testing.real_tree.build_real_tree``
with one copy of CSI1 (``CSI1copy``, for the group level), then the app runs in child processes of
this checkout (``python -m bids_taskenc``): the participant level on both participants with the user
spaces ``drive`` (drives both PPA masks) and ``random`` (drives nothing), the real confounds
``FramewiseDisplacement X Y Z``, then the group level.

Printed and written to ``--json``: the tree's build time, each level's wall time, per participant
the runs, trials and images the app counted (its sidecar's ``Responses``) against the events
files', whether the run log says why ``task-localizer`` was skipped, and the recovery: driven
voxels found (q < 0.05 of the PPA truth), false positives outside it, voxels of the null space.
The group level's similarity of ``drive`` and ``random`` (about 0) is checked too.
The last line is ``real tree: OK`` or ``real tree: FAILED (...)``, and the exit code follows it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from bids_taskenc.outputs.logs import run_logs  # noqa: E402
from bids_taskenc.outputs.naming import derivative_path, sidecar_path  # noqa: E402
from bids_taskenc.outputs.reading import read_sidecar, statmap_path  # noqa: E402
from bids_taskenc.testing.real_tree import DRIVE_SPACE, NULL_SPACE, build_real_tree  # noqa: E402

log = logging.getLogger("real_tree")
DEFAULT_ARCHIVE = ROOT.parent / "shared" / "real" / "ds001499" / "ds001499-CSI1-text.tgz"
TASK = "5000scenes"
LOCALIZER_LINE = "task-localizer skipped: its events name no stimulus file"
#: CSI1's real counts (DESIGN.md), checked when the whole participant is built.
WHOLE = {"runs": 142, "trials": 5254, "images": 4916, "localizer_runs": 8}


def _app(*argv) -> float:
    """Run ``python -m bids_taskenc ARGV`` on this checkout; its wall time (s)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "bids_taskenc", *map(str, argv)], env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"bids_taskenc {argv[2]} exited {proc.returncode}")
    return time.perf_counter() - start


def _recovery(tree, out: Path, participant: str) -> dict:
    import nibabel as nib

    meta = read_sidecar(sidecar_path(statmap_path(out, participant, TASK, "T1w", DRIVE_SPACE, "r")))
    truth, brain = tree.truth_masks[participant], tree.brain_mask
    q_drive = nib.load(statmap_path(out, participant, TASK, "T1w", DRIVE_SPACE, "q")).get_fdata()
    q_null = nib.load(statmap_path(out, participant, TASK, "T1w", NULL_SPACE, "q")).get_fdata()
    return {
        "counted": {k: meta["Responses"][f"N{k.title()}"] for k in ("runs", "trials", "images")},
        "events": tree.counts[participant],
        "driven_voxels": int(truth.sum()),
        "driven_found": int(((q_drive < 0.05) & truth).sum()),
        "false_positives": int(((q_drive < 0.05) & brain & ~truth).sum()),
        "other_voxels": int((brain & ~truth).sum()),
        "null_space_voxels": int((q_null < 0.05).sum()),
    }


def _failures(result: dict, whole: bool) -> list[str]:
    bad = []
    if not result["localizer_logged"]:
        bad.append("no log line says why task-localizer was skipped")
    if abs(result["group_similarity_drive_random"]) > 0.1:
        bad.append(f"group similarity of {DRIVE_SPACE} and {NULL_SPACE}: {result['group_similarity_drive_random']}")
    for participant, rec in result["participants"].items():
        events = {k: rec["events"][k] for k in ("runs", "trials", "images")}
        if rec["counted"] != events:
            bad.append(f"{participant}: the app counted {rec['counted']}, the events hold {events}")
        if whole and rec["events"] != WHOLE:
            bad.append(f"{participant}: the events hold {rec['events']}, CSI1 has {WHOLE}")
        if rec["driven_found"] < 0.9 * rec["driven_voxels"]:
            bad.append(f"{participant}: {rec['driven_found']} of {rec['driven_voxels']} driven voxels found")
        if rec["false_positives"] > 0.02 * rec["other_voxels"] or rec["null_space_voxels"] > 2:
            bad.append(f"{participant}: {rec['false_positives']} false positives, {rec['null_space_voxels']} null")
    return bad


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--archive", type=Path, default=DEFAULT_ARCHIVE, help="tar archive of ds001499's text files")
    ap.add_argument("--sessions", nargs="+", help="only these sessions (default: all)")
    ap.add_argument("--out", type=Path, help="folder for the tree and outputs (default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the folder")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not args.archive.is_file():
        raise SystemExit(f"{args.archive}: no such archive (give --archive)")
    root = args.out or Path(tempfile.mkdtemp(prefix="real_tree_"))
    try:
        start = time.perf_counter()
        tree = build_real_tree(root, args.archive, sessions=args.sessions, copies=["CSI1copy"], seed=0)
        build_s = time.perf_counter() - start
        out, work = root / "out", root / "work"
        participant_s = _app(
            tree.bids_dir, out, "participant", "--features-dir", tree.features_dir,
            "--feature-spaces", f"user:{DRIVE_SPACE}", f"user:{NULL_SPACE}",
            "--stimuli-dir", tree.stimuli_dir.parent.parent,
            "--confounds", "FramewiseDisplacement", "X", "Y", "Z",
            "--work-dir", work, "--seed", "0",
        )  # fmt: skip
        group_s = _app(tree.bids_dir, out, "group", "--offline")
        similarity = pd.read_csv(
            derivative_path(out, task=TASK, desc="similarity", suffix="matrix", extension=".tsv"), sep="\t", index_col=0
        )
        text = "\n".join(p.read_text() for p in run_logs(out))
        result = {
            "archive": str(args.archive),
            "sessions": tree.sessions,
            "brain_voxels": int(tree.brain_mask.sum()),
            "annexed_paths_checked": tree.annexed_checked,
            "build_s": round(build_s, 1),
            "participant_level_s": round(participant_s, 1),
            "group_level_s": round(group_s, 1),
            "localizer_logged": LOCALIZER_LINE in text,
            "participants": {p: _recovery(tree, out, p) for p in tree.participants},
            "group_similarity_drive_random": round(float(similarity.loc[DRIVE_SPACE, NULL_SPACE]), 3),
            "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs",
            "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        }
    finally:
        if not (args.keep or args.out):
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    bad = _failures(result, whole=args.sessions is None)
    print("real tree: OK" if not bad else f"real tree: FAILED ({'; '.join(bad)})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
