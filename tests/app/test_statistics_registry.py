"""A statistic registered in ``outputs/statistics.py`` is written, reported and described with no other change.

The toy statistic is ``-r`` (``stat-negr``), taken from the fit result by a function in a module of the test's own
(resolved by import path, as a plug-in's would be), shown in the participant report on a diverging scale, and
described by its sidecars' ``Description`` and a sentence of the methods text with its citation (a reference that
nothing else in this run cites).
"""

from __future__ import annotations

import json

import numpy as np

from bids_taskenc.core.images import load_volume
from bids_taskenc.outputs.naming import derivative_path, sidecar_path
from bids_taskenc.outputs.reading import brain_mask_path, read_masked, statmap_path
from bids_taskenc.outputs.statistics import STATISTICS, MapDisplay, MapStatistic
from bids_taskenc.report.citation import write_citation
from bids_taskenc.report.participant import write_participant_report
from bids_taskenc.workflow import (
    ComparisonSettings,
    FeatureSettings,
    FitSettings,
    OutputSettings,
    ParticipantSettings,
    run_participant,
)

TOY = MapStatistic(
    "negr",
    "Minus the test-set Pearson r (a toy statistic of the registry test)",
    "Pearson r",
    source="toy_statistic:negative_r",
    methods="The sign-flipped test-set r was mapped as well (a toy statistic).",
    citations=("lescroart2019voxelwise",),
    display=MapDisplay(
        cmap="RdBu_r",
        label="-r (test set)",
        title="the toy statistic -r",
        caption="Toy statistic: minus the test-set r of every feature space.",
        figure="negrmaps",
        symmetric=True,
        thresholded=False,
    ),
)


def test_a_registered_statistic_is_written_reported_and_described(small_dataset, tmp_path, monkeypatch):
    (tmp_path / "plugin").mkdir()
    (tmp_path / "plugin" / "toy_statistic.py").write_text("def negative_r(result):\n    return -result.r\n")
    monkeypatch.syspath_prepend(str(tmp_path / "plugin"))
    out = tmp_path / "out"
    settings = ParticipantSettings(
        features=FeatureSettings(spaces=("user:scene3da",), features_dir=small_dataset.features_dir),
        fit=FitSettings(cv_folds=3),
        comparisons=ComparisonSettings(contrast_bootstrap=0),
        outputs=OutputSettings(work_dir=tmp_path / "work"),
    )
    with STATISTICS.temporarily(TOY):
        run_participant(small_dataset.bids_dir, out, "CSI1", settings)
        page = write_participant_report(out, "CSI1")
        citation_files = write_citation(out)
    assert "negr" not in STATISTICS

    space = json.loads(sidecar_path(statmap_path(out, "CSI1", "5000scenes", "T1w", "scene3da", "r")).read_text())
    path = statmap_path(out, "CSI1", "5000scenes", "T1w", "scene3da", "negr")
    assert path == derivative_path(
        out,
        sub="CSI1",
        task="5000scenes",
        space="T1w",
        desc="scene3da",
        stat="negr",
        suffix="statmap",
        extension=".nii.gz",
    )
    mask = np.asarray(load_volume(brain_mask_path(out, "CSI1", "5000scenes", "T1w")).dataobj) > 0
    negr = read_masked(path, mask)
    r = read_masked(statmap_path(out, "CSI1", "5000scenes", "T1w", "scene3da", "r"), mask)
    np.testing.assert_array_equal(negr, -r)
    assert np.abs(r).max() > 0.1  # not a map of zeros

    meta = json.loads(sidecar_path(path).read_text())
    assert meta["Statistic"] == "negr" and meta["Description"] == TOY.description
    assert meta["Split"] == space["Split"] and meta["AlphaGrid"] == space["AlphaGrid"]

    html = page.read_text()
    assert TOY.display is not None and TOY.display.caption in html and "negr maps of every feature space" in html
    assert TOY.methods in html  # the page's methods text
    methods = next(p for p in citation_files if p.name == "CITATION.md").read_text()
    assert f"{TOY.methods} [@lescroart2019voxelwise]" in methods
    assert "lescroart2019voxelwise" in next(p for p in citation_files if p.name == "CITATION.bib").read_text()
    figure = out / "figures" / "sub-CSI1_task-5000scenes_desc-negrmaps_figure.png"
    assert figure.stat().st_size > 5_000 and figure.name in html
