"""``bids_taskenc-synthetic OUT``: write the synthetic BOLD5000-shaped dataset.

The BIDS folder is ``OUT`` itself; stimuli in the BOLD5000 layout go beside it
(``OUT/../Scene_Stimuli``) when ``--stimuli-layout bold5000`` is asked for.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from .synthetic import make_synthetic_dataset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bids_taskenc-synthetic", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bids_dir", type=Path, help="folder to create (must not exist or be empty)")
    parser.add_argument("--participants", type=int, default=2)
    parser.add_argument("--sessions", type=int, default=3)
    parser.add_argument("--runs-per-session", type=int, default=4)
    parser.add_argument("--trials-per-run", type=int, default=24)
    parser.add_argument("--fmriprep-naming", choices=("modern", "legacy"), default="modern")
    parser.add_argument("--stimuli-layout", choices=("bids", "bold5000"), default="bids")
    parser.add_argument("--noise-sd", type=float, default=0.5)
    parser.add_argument("--space", default="T1w", help="space- of the preprocessed BOLD (e.g. MNI152NLin2009cAsym)")
    parser.add_argument("--surfaces", action="store_true", help="also write fMRIPrep-style pial/white surfaces")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    target = args.bids_dir.resolve()
    if target.exists() and any(target.iterdir()):
        print(f"bids_taskenc-synthetic: {target} exists and is not empty", file=sys.stderr)
        return 64
    with tempfile.TemporaryDirectory(dir=target.parent if target.parent.exists() else None) as tmp:
        ds = make_synthetic_dataset(
            tmp, n_participants=args.participants, n_sessions=args.sessions,
            runs_per_session=args.runs_per_session, trials_per_run=args.trials_per_run,
            fmriprep_naming=args.fmriprep_naming, stimuli_layout=args.stimuli_layout,
            noise_sd=args.noise_sd, space=args.space, surfaces=args.surfaces, seed=args.seed)
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
