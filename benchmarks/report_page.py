"""Time one participant report page with 21 feature spaces (the Taskonomy count).

Fake outputs (tests/report/report_fixtures.py) on a BOLD-sized grid: T1w space
(orthogonal slices over the participant's T1w, ROI outlines, noise maps) and
MNI space (fsaverage5 flat maps sampled from the volume). The first page of a
process pays the imports and one-off rasters; the later ones are the
steady state of a multi-participant run. CPU seconds of the process are
printed beside the wall-clock ones: on a shared machine they are the number to
compare.

    python benchmarks/report_page.py [--shape 58 76 52] [--voxel-mm 2.5] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "report"))

TASKS = [
    ("autoencoding", "2D"),
    ("colorization", "2D"),
    ("denoising", "2D"),
    ("edgetexture", "2D"),
    ("inpainting", "2D"),
    ("keypoints2d", "2D"),
    ("segment2d", "2D"),
    ("curvature", "3D"),
    ("depthzbuffer", "3D"),
    ("edgeocclusion", "3D"),
    ("keypoints3d", "3D"),
    ("normal", "3D"),
    ("reshading", "3D"),
    ("segment25d", "3D"),
    ("depthEuclidean", "3D"),
    ("roomlayout", "3D"),
    ("vanishingpoint", "3D"),
    ("egomotion", "3D"),
    ("fixatedpose", "3D"),
    ("classobject", "semantic"),
    ("classscene", "semantic"),
]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=3, default=(58, 76, 52))
    parser.add_argument("--voxel-mm", type=float, default=2.5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    from report_fixtures import fake_outputs

    from bids_taskenc.report import write_participant_report

    with tempfile.TemporaryDirectory() as tmp:
        for space in ("T1w", "MNI152NLin2009cAsym"):
            out = Path(tmp) / space / "out"
            fake_outputs(
                out,
                space=space,
                shape=tuple(args.shape),
                voxel_mm=args.voxel_mm,
                spaces=TASKS,
                noise=True,
                fmriprep=Path(tmp) / space / "fmriprep",
                roi_dir=Path(tmp) / space / "rois",
            )
            times = []
            for _ in range(args.repeats):
                t, c = time.perf_counter(), time.process_time()
                write_participant_report(out, "01")
                times.append((time.perf_counter() - t, time.process_time() - c))
            text = ", ".join(f"{w:.2f} s ({c:.2f} s CPU)" for w, c in times)
            print(f"{space}: {len(TASKS)} feature spaces, grid {tuple(args.shape)}: pages {text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
