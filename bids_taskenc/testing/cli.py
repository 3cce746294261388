"""``bids_taskenc-synthetic OUT``: write the synthetic BOLD5000-shaped dataset.

The BIDS folder is ``OUT`` itself; stimuli in the BOLD5000 layout go beside it
(``OUT/../Scene_Stimuli``) when ``--stimuli-layout bold5000`` is asked for.

Size: ``--grid X Y Z`` sets the volume (3 mm voxels; ROIs scale with it) and
``--bold5000-counts`` BOLD5000's sessions, runs, trials and repeats (15
sessions of 9-10 runs = 142 runs of 37 trials and 194 volumes; 5,254 trials of
4,916 images, 112 shown four times and one three times). Together,
``--grid 44 52 44 --bold5000-counts`` gives one BOLD5000-sized participant
(about 51,000 brain voxels): about 45 MB and 5 s of one CPU core per run,
so ~6 GB and ~12 minutes per participant, mostly gzip of the BOLD runs.

A real brain: ``--template MNI152NLin2009cAsym`` puts the data on nilearn's
bundled MNI152 brain mask (``--template-resolution``, default 5 mm: about
15,000 voxels; ``--grid`` is then ignored) with ROIs at literature MNI
coordinates, BOLD in ``space-MNI152NLin2009cAsym`` and the template T1w as
each participant's ``anat/..._space-MNI152NLin2009cAsym_desc-preproc_T1w``.
The demo (``make demo``) uses it, so slices, fsaverage flat maps and group
maps show the planted regions where they are in a brain.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from .synthetic import (
    BOLD5000_COUNTS,
    DEFAULT_GRID,
    TEMPLATE_RESOLUTION_MM,
    TEMPLATES,
    make_synthetic_dataset,
)

#: Defaults of the count options (None on the parser, so --bold5000-counts can tell an explicit value).
_COUNT_DEFAULTS = {"sessions": 3, "runs_per_session": [4], "trials_per_run": 24, "repeated": 6, "shown_thrice": 0}


def build_parser() -> argparse.ArgumentParser:
    """The generator's command line (also rendered into the docs' options page)."""
    parser = argparse.ArgumentParser(
        prog="bids_taskenc-synthetic", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("bids_dir", type=Path, help="folder to create (must not exist or be empty)")
    parser.add_argument("--participants", type=int, default=2)
    parser.add_argument("--sessions", type=int, help="functional sessions (default 3)")
    parser.add_argument(
        "--runs-per-session",
        type=int,
        nargs="+",
        metavar="N",
        help="runs in each session: one count for all, or one per session (default 4)",
    )
    parser.add_argument("--trials-per-run", type=int, help="trials a run, one every 10 s (default 24)")
    parser.add_argument("--repeated", type=int, help="images shown four times (default 6)")
    parser.add_argument("--shown-thrice", type=int, help="images shown three times (default 0)")
    parser.add_argument(
        "--bold5000-counts",
        action="store_true",
        help="BOLD5000's counts: 15 sessions of 9-10 runs (142), 37 trials a run, 112 images shown "
        "four times and one three times (5,254 trials, 4,916 images); excludes the five "
        "count options above",
    )
    parser.add_argument(
        "--grid",
        type=int,
        nargs=3,
        metavar=("X", "Y", "Z"),
        default=list(DEFAULT_GRID),
        help="volume grid in 3 mm voxels (default %(default)s; 44 52 44: ~51,000 brain voxels)",
    )
    parser.add_argument("--fmriprep-naming", choices=("modern", "legacy"), default="modern")
    parser.add_argument("--stimuli-layout", choices=("bids", "bold5000"), default="bids")
    parser.add_argument("--noise-sd", type=float, default=0.5)
    parser.add_argument("--space", help="space- of the preprocessed BOLD (default T1w, or the --template)")
    parser.add_argument(
        "--template",
        choices=TEMPLATES,
        help="put the data on nilearn's MNI152 brain mask with ROIs at MNI coordinates "
        "(BOLD in this space; --grid ignored)",
    )
    parser.add_argument(
        "--template-resolution",
        type=float,
        default=TEMPLATE_RESOLUTION_MM,
        metavar="MM",
        help="voxel size of the --template grid in mm (default %(default)s: ~15,000 brain voxels)",
    )
    parser.add_argument("--surfaces", action="store_true", help="also write fMRIPrep-style pial/white surfaces")
    parser.add_argument(
        "--n-features", type=int, default=32, help="columns of each synthetic feature space (default %(default)s)"
    )
    parser.add_argument(
        "--preproc-dtype",
        choices=("float32", "int16"),
        default="float32",
        help="on-disk type of the preprocessed BOLD: float32 (default) or int16 with a scale factor, "
        "as BOLD5000's (half the bytes to write and read)",
    )
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    counts = {k: getattr(args, k) for k in _COUNT_DEFAULTS}
    sizes: dict[str, Any]  # make_synthetic_dataset's count keywords (ints, runs_per_session also a sequence)
    if args.bold5000_counts:
        given = [f"--{k.replace('_', '-')}" for k, v in counts.items() if v is not None]
        if given:
            parser.error(f"--bold5000-counts sets the counts; drop {' '.join(given)}")
        sizes = BOLD5000_COUNTS
    else:
        counts = {k: _COUNT_DEFAULTS[k] if v is None else v for k, v in counts.items()}
        runs = counts["runs_per_session"]
        sizes = {
            "n_sessions": counts["sessions"],
            "runs_per_session": runs[0] if len(runs) == 1 else runs,
            "trials_per_run": counts["trials_per_run"],
            "n_repeated": counts["repeated"],
            "n_shown_thrice": counts["shown_thrice"],
        }

    target = args.bids_dir.resolve()
    if target.exists() and any(target.iterdir()):
        print(f"bids_taskenc-synthetic: {target} exists and is not empty", file=sys.stderr)
        return 64
    with tempfile.TemporaryDirectory(dir=target.parent if target.parent.exists() else None) as tmp:
        ds = make_synthetic_dataset(
            tmp,
            n_participants=args.participants,
            **sizes,
            shape=tuple(args.grid),
            fmriprep_naming=args.fmriprep_naming,
            stimuli_layout=args.stimuli_layout,
            noise_sd=args.noise_sd,
            space=args.space,
            template=args.template,
            template_resolution_mm=args.template_resolution,
            surfaces=args.surfaces,
            n_features=args.n_features,
            preproc_dtype=args.preproc_dtype,
            seed=args.seed,
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            target.rmdir()
        shutil.move(str(ds.bids_dir), target)
        if args.stimuli_layout == "bold5000":
            shutil.move(str(Path(tmp) / "Scene_Stimuli"), target.parent / "Scene_Stimuli")
    print(f"synthetic BIDS dataset: {target}")
    print(f"  feature spaces (--features-dir): {target / 'derivatives' / 'features'}")
    print(f"  planted truth: {target / 'derivatives' / 'synthetic_truth'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
