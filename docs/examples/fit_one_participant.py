"""
Fit one participant from Python and plot a map
===============================================

The command line (``bids_taskenc BIDS_DIR OUTPUT_DIR participant ...``) is one way to run the encoding models;
:func:`bids_taskenc.workflow.run_participant` is the same run as a Python call, with the options as typed, frozen
settings objects (:mod:`bids_taskenc.workflow.settings`) whose defaults are the command line's.

This example

1. writes a tiny synthetic BOLD5000-shaped dataset (one participant, a small grid, user feature spaces whose
   planted truth is known: ``scene3da`` drives the scene-selective regions, ``random`` nothing),
2. builds :class:`~bids_taskenc.workflow.settings.ParticipantSettings` naming only what differs from the defaults,
3. fits and writes the participant (maps, tables and sidecars into ``OUTPUT/derivatives/sub-CSI1``),
4. plots the held-out Pearson r map of ``scene3da`` with nilearn's ``plot_stat_map``.

Run it as ``python docs/examples/fit_one_participant.py [OUTPUT]`` (default: ``$BIDS_TASKENC_EXAMPLE_OUT`` or
``./example_output``). It takes a few seconds on a laptop CPU.
"""

import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed

from nilearn import plotting  # noqa: E402

from bids_taskenc.testing.synthetic import make_synthetic_dataset  # noqa: E402
from bids_taskenc.workflow import (  # noqa: E402
    ComparisonSettings,
    FeatureSettings,
    FitSettings,
    OutputSettings,
    ParticipantSettings,
    run_participant,
)

out = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("BIDS_TASKENC_EXAMPLE_OUT", "example_output"))

# %%
# A synthetic dataset: one participant, two sessions of two short runs (96 trials) on a 12 x 12 x 10 grid.
data = make_synthetic_dataset(
    out / "data",
    n_participants=1,
    n_sessions=2,
    runs_per_session=2,
    trials_per_run=24,
    n_repeated=4,
    shape=(12, 12, 10),
    seed=0,
)

# %%
# The settings: two of the user feature spaces, a 3-fold CV, no contrast bootstrap; everything else as the
# command line's defaults (travg responses, the paper's alpha grid, 15 % held-out images, FDR at 0.05).
settings = ParticipantSettings(
    features=FeatureSettings(spaces=("user:scene3da", "user:random"), features_dir=data.features_dir),
    fit=FitSettings(cv_folds=3),
    comparisons=ComparisonSettings(contrast_bootstrap=0),
    outputs=OutputSettings(work_dir=out / "work"),
)

# %%
# Fit and write. The outcome says, per task and feature space, how many voxels survive FDR.
outcome = run_participant(data.bids_dir, out / "derivatives", "CSI1", settings)
print(f"sub-CSI1 fitted in {outcome.seconds} s; voxels with q < 0.05: {outcome.n_significant()}")

# %%
# Plot the r map of scene3da: the planted scene regions should stand out, the null space's map should not.
r_map = next(outcome.output_dir.glob("func/*_desc-scene3da_stat-r_statmap.nii.gz"))
figure = out / "sub-CSI1_desc-scene3da_stat-r.png"
display = plotting.plot_stat_map(
    str(r_map),
    bg_img=None,
    threshold=0.2,
    display_mode="z",
    cut_coords=5,
    title="sub-CSI1 scene3da: test-set r",
    colorbar=True,
)
display.savefig(str(figure))
print(f"map: {r_map}\nfigure: {figure}")
