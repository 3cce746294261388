"""The demo's feature spaces: ``python -m bids_taskenc.testing.demo FEATURES_DIR`` prints them.

* every user space of the synthetic dataset (they carry the planted truth), the eight clustered ones under the
  name of a Taskonomy task of their planted group (:data:`TASKONOMY_STAND_INS`: ``scene3da`` -> ``keypoints3d``,
  ``edge2da`` -> ``edgetexture``, ``objecta`` -> ``classobject`` ...), copied so in ``FEATURES_DIR``, so that
  the group level compares the demo's task structure with Taskonomy's transfer affinities (which ship with the
  package) and ``group.html`` shows the paper's headline comparison offline. They stay synthetic ``user:``
  spaces (their ``space.json`` says whose stand-in they are); a Taskonomy encoder the demo runs keeps its name;
* the weight-free baselines (``baseline:gabor``, ``pixels``, ``color``), which need no download;
* ``taskonomy:<task>`` for each of the paper's tasks whose weights are already in the store
  (``--taskonomy-weights`` / ``BIDS_TASKENC_MODELS``) when a CUDA GPU is present; on CPU one
  encoder takes minutes for the demo's images, so they are left out unless
  ``BIDS_TASKENC_DEMO_TASKONOMY=1``. The demo never downloads.

The choice and its reason go to stderr; the names, space-separated, to stdout.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Collection
from pathlib import Path

from bids_taskenc.features import store
from bids_taskenc.features.baselines import BASELINES
from bids_taskenc.features.taskonomy import PAPER_TASKS

#: Synthetic space -> the BIDS label of a Taskonomy task of the same planted group (2D, 3D, semantic).
TASKONOMY_STAND_INS = {
    "edge2da": "edgetexture",
    "edge2db": "keypoints2d",
    "edge2dc": "autoencoding",
    "scene3da": "keypoints3d",
    "scene3db": "edgeocclusion",
    "scene3dc": "normal",
    "objecta": "classobject",
    "objectb": "classscene",
}


def taskonomy_stand_ins(
    features_dir: str | Path, target: str | Path | None = None, taken: Collection[str] = ()
) -> dict[str, str]:
    """Copy the synthetic user spaces of ``features_dir`` under their Taskonomy stand-in names (into ``target``,
    default ``features_dir``) and return ``{synthetic name: stand-in name}``.

    A stand-in whose name is in ``taken`` (a Taskonomy encoder the run also fits, which has that label) is not
    made. The copy's ``space.json`` description says whose stand-in it is; an existing copy is replaced.
    """
    source, target = Path(features_dir), Path(target) if target is not None else Path(features_dir)
    made = {}
    for name, label in TASKONOMY_STAND_INS.items():
        if label in taken or not (source / name / "features.npy").exists():
            continue
        copy = target / label
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(source / name, copy)
        meta_path = copy / "space.json"
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        meta["description"] = (
            f"{meta.get('description', 'synthetic space')}: synthetic space {name} named after the Taskonomy task "
            f"{label} of its planted group (demo stand-in, not Taskonomy features)"
        )
        meta_path.write_text(json.dumps(meta, indent=2) + "\n")
        made[name] = label
    return made


def demo_feature_spaces(features_dir: str | Path) -> tuple[list[str], str]:
    """Feature-space names for the demo and one sentence saying which Taskonomy encoders are in and why.

    Makes the Taskonomy-named stand-ins of the synthetic spaces in ``features_dir`` (:func:`taskonomy_stand_ins`).
    """
    directory = store.weights_dir(None)
    present = [t for t in PAPER_TASKS if store.candidates(t, directory)]
    encoders, why = [], f"no Taskonomy weights in {directory}; the demo uses the weight-free baselines"
    if present:
        import torch

        if torch.cuda.is_available() or os.environ.get("BIDS_TASKENC_DEMO_TASKONOMY") == "1":
            encoders, why = present, f"Taskonomy encoders with weights in {directory}: {', '.join(present)}"
        else:
            why = (
                f"{len(present)} Taskonomy encoder(s) in {directory} left out: no CUDA GPU, and on CPU each "
                "takes minutes (set BIDS_TASKENC_DEMO_TASKONOMY=1 to include them)"
            )
    from bids_taskenc.core.labels import bids_label

    made = taskonomy_stand_ins(features_dir, taken={bids_label(t) for t in encoders})
    spaces = sorted(
        p.name
        for p in Path(features_dir).iterdir()
        if p.is_dir() and (p / "features.npy").exists() and p.name not in made
    )
    names = [f"user:{s}" for s in spaces] + [f"baseline:{b}" for b in BASELINES] + [f"taskonomy:{t}" for t in encoders]
    if made:
        pairs = ", ".join(f"{a} as {b}" for a, b in made.items())
        why += f"; synthetic spaces named after Taskonomy tasks of their group: {pairs}"
    return names, why


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
