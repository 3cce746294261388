"""The demo's feature spaces: ``python -m bids_taskenc.testing.demo FEATURES_DIR`` prints them.

* every user space of the synthetic dataset (they carry the planted truth);
* the weight-free baselines (``baseline:gabor``, ``pixels``, ``color``), which need no download;
* ``taskonomy:<task>`` for each of the paper's tasks whose weights are already in the store
  (``--taskonomy-weights`` / ``BIDS_TASKENC_MODELS``) when a CUDA GPU is present; on CPU one
  encoder takes minutes for the demo's images, so they are left out unless
  ``BIDS_TASKENC_DEMO_TASKONOMY=1``. The demo never downloads.

The choice and its reason go to stderr; the names, space-separated, to stdout.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from bids_taskenc.features import store
from bids_taskenc.features.baselines import BASELINES
from bids_taskenc.features.taskonomy import PAPER_TASKS


def demo_feature_spaces(features_dir: str | Path) -> tuple[list[str], str]:
    """Feature-space names for the demo and one sentence saying which Taskonomy encoders are in and why."""
    names = [
        f"user:{p.name}" for p in sorted(Path(features_dir).iterdir()) if p.is_dir() and (p / "features.npy").exists()
    ]
    names += [f"baseline:{b}" for b in BASELINES]
    directory = store.weights_dir(None)
    present = [t for t in PAPER_TASKS if store.candidates(t, directory)]
    if not present:
        return names, f"no Taskonomy weights in {directory}; the demo uses the weight-free baselines"
    import torch

    if torch.cuda.is_available() or os.environ.get("BIDS_TASKENC_DEMO_TASKONOMY") == "1":
        return names + [
            f"taskonomy:{t}" for t in present
        ], f"Taskonomy encoders with weights in {directory}: {', '.join(present)}"
    return names, (
        f"{len(present)} Taskonomy encoder(s) in {directory} left out: no CUDA GPU, and on CPU each "
        "takes minutes (set BIDS_TASKENC_DEMO_TASKONOMY=1 to include them)"
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m bids_taskenc.testing.demo FEATURES_DIR", file=sys.stderr)
        return 64
    names, why = demo_feature_spaces(argv[0])
    print(f"demo feature spaces: {why}", file=sys.stderr)
    print(" ".join(names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
