"""Which brain picture a report uses, and why: pycortex, fsaverage5 flat maps, or slices.

Small fake output folders (report_fixtures.fake_outputs) stand in for a run
in MNI space, with or without fsaverage5 GIFTI maps, and in T1w space.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import types

import matplotlib.pyplot as plt
import numpy as np
import pytest
from report_fixtures import fake_outputs

from bids_taskenc.report import write_participant_report
from bids_taskenc.report.brain import FlatCanvas, MapSpec, choose_view, find_pycortex_subject
from bids_taskenc.report.citation import brain_views
from bids_taskenc.report.inputs import load_participant

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def _view_of(html: str) -> str:
    return html.split('<meta name="bids_taskenc-brain-view" content="')[1].split('"')[0]


def test_fsaverage5_gifti_maps_are_drawn_on_the_flat_meshes(tmp_path):
    out = fake_outputs(tmp_path, gifti=True)
    view = choose_view(load_participant(out, "01"))
    assert view.kind == "flat" and view.source == "gifti"
    html = write_participant_report(out, "01").read_text()
    assert _view_of(html) == "flat" and "fsaverage5 GIFTI maps" in html and "flat meshes" in html
    assert "The maps have data at 100.0 % of the fsaverage5 vertices" in html
    assert (out / "figures" / "sub-01_task-x_desc-rmaps_figure.png").stat().st_size > 10_000
    assert "sub-01_task-x_desc-meanr_figure.png" in html and "ROI bar chart: not computed" in html


def test_mni_volume_without_gifti_is_sampled_onto_fsaverage5(tmp_path):
    out = fake_outputs(tmp_path)
    view = choose_view(load_participant(out, "01"))
    assert view.kind == "flat" and view.source == "vol_to_surf"
    assert "MNI template" in view.reason and "vol_to_surf" in view.reason
    assert "pycortex" in view.reason  # and why there is no pycortex flatmap


def test_native_space_gets_orthogonal_slices_and_says_why(tmp_path):
    out = fake_outputs(tmp_path, space="T1w", shape=(12, 14, 10), voxel_mm=10.0)
    view = choose_view(load_participant(out, "01"))
    assert view.kind == "slices"
    assert "participant's own" in view.reason and "pycortex" in view.reason
    html = write_participant_report(out, "01").read_text()
    assert _view_of(html) == "slices"
    assert brain_views(out) == {"slices"}


def test_flat_canvas_colours_exactly_the_shown_vertices():
    canvas = FlatCanvas()
    n = canvas.n_vertices
    values = {h: np.full(n[h], 0.5) for h in n}
    none = MapSpec(
        "none",
        np.zeros(1),
        np.zeros(1, bool),
        "inferno",
        0,
        1,
        "r",
        surface=values,
        surface_shown={h: np.zeros(n[h], bool) for h in n},
    )
    every = MapSpec(
        "all",
        np.zeros(1),
        np.zeros(1, bool),
        "inferno",
        0,
        1,
        "r",
        surface=values,
        surface_shown={h: np.ones(n[h], bool) for h in n},
    )
    cmap, norm = plt.get_cmap("inferno"), plt.Normalize(0, 1)
    grey, _ = canvas.tile(none, cmap, norm)
    full, _ = canvas.tile(every, cmap, norm)
    colour = np.asarray(cmap(0.5)[:3])
    # values are interpolated inside faces: 0.5 may come out a rounding below, one step of the colour table lower
    step = np.abs(np.asarray(cmap(0.5 - 1e-9)[:3]) - colour).max() + 1e-6
    assert not np.any(np.all(np.isclose(grey, colour, atol=step), axis=-1))
    inside = ~np.all(np.isclose(grey, 1.0), axis=-1)  # not white: on the mesh
    assert inside.mean() > 0.3
    assert np.all(np.isclose(full[inside], colour, atol=step))


@pytest.fixture
def fake_pycortex(tmp_path, monkeypatch):
    """A stand-in ``cortex`` module with a filestore holding subject ``sub-01`` (one transform)."""
    store = tmp_path / "filestore"
    (store / "sub-01" / "surfaces").mkdir(parents=True)
    (store / "sub-01" / "transforms" / "func2anat").mkdir(parents=True)
    calls = []

    class Volume:
        def __init__(self, data, subject, xfmname, **kwargs):
            calls.append((data.shape, subject, xfmname, kwargs))

    def make_figure(braindata, **kwargs):
        fig = plt.figure(figsize=(4, 2))
        fig.add_axes([0, 0, 1, 1]).imshow(np.random.default_rng(0).random((20, 40)))
        return fig

    cortex = types.ModuleType("cortex")
    cortex.__spec__ = importlib.machinery.ModuleSpec("cortex", None)
    cortex.db = types.SimpleNamespace(filestore=str(store))
    cortex.Volume = Volume
    cortex.quickflat = types.SimpleNamespace(make_figure=make_figure)
    monkeypatch.setitem(sys.modules, "cortex", cortex)
    return calls


def test_pycortex_subject_from_the_filestore_is_used_first(tmp_path, fake_pycortex):
    out = fake_outputs(tmp_path / "out", space="T1w", shape=(12, 14, 10), voxel_mm=10.0)
    subject, xfm, message = find_pycortex_subject("01")
    assert (subject, xfm) == ("sub-01", "func2anat") and "found in the pycortex filestore" in message
    html = write_participant_report(out, "01").read_text()
    assert _view_of(html) == "pycortex" and "pycortex subject sub-01" in html
    shape, subject, xfm, kwargs = fake_pycortex[0]
    assert shape == (10, 14, 12) and subject == "sub-01" and xfm == "func2anat"  # data transposed to (z, y, x)
    assert kwargs["cmap"] == "inferno"
    assert "pycortex" in brain_views(out)


def test_pycortex_problems_fall_back_and_say_why(tmp_path, fake_pycortex):
    out = fake_outputs(tmp_path / "out", space="T1w", shape=(12, 14, 10), voxel_mm=10.0)
    data = load_participant(out, "01")
    view = choose_view(data, pycortex_subject="S9")
    assert view.kind == "slices" and "no pycortex subject S9" in view.reason
    view = choose_view(data, pycortex_xfm="other")
    assert view.kind == "slices" and "no transform 'other'" in view.reason


def test_without_pycortex_installed_the_reason_names_the_extra(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    subject, _, message = find_pycortex_subject("01", "S1")
    assert subject is None and "bids_taskenc[flatmaps]" in message


@pytest.mark.skipif(importlib.util.find_spec("cortex") is None, reason="pycortex (optional extra 'flatmaps') absent")
def test_real_pycortex_flatmap_of_the_demo_subject(tmp_path):
    """With pycortex installed: its demo subject S1 ('fullhead' grid, 100 x 100 x 31) gets a quickflat figure."""
    import cortex

    if not (cortex.db.filestore and (__import__("pathlib").Path(cortex.db.filestore) / "S1").is_dir()):
        pytest.skip("pycortex demo subject S1 not in the filestore")
    out = fake_outputs(tmp_path, space="T1w", shape=(100, 100, 31), voxel_mm=2.0)
    html = write_participant_report(out, "01", pycortex_subject="S1", pycortex_xfm="fullhead").read_text()
    assert _view_of(html) == "pycortex"
    assert (out / "figures" / "sub-01_task-x_desc-rmaps_figure.png").stat().st_size > 50_000


def test_roi_permutation_stars_and_quality_warnings(tmp_path):
    """A ROI table with p_mean_r gets its stars and p column; alphas piled at the grid's edges are warned about."""
    import pandas as pd

    from bids_taskenc.outputs.atomic import write_tsv
    from bids_taskenc.outputs.naming import derivative_path

    out = fake_outputs(tmp_path, space="T1w", shape=(12, 14, 10), voxel_mm=10.0)
    rows = [
        {
            "feature_space": label,
            "feature_group": group,
            "roi": roi,
            "n_voxels": 30,
            "mean_r": r,
            "mean_rsquared": r * r,
            "fraction_significant": 0.5,
            "p_mean_r": p,
        }
        for label, group, r, p in (("keypoints3d", "3D", 0.4, 0.001), ("keypoints2d", "2D", 0.05, 0.4))
        for roi in ("PPA", "LH-PPA", "RH-PPA", "EarlyVis")
    ]
    write_tsv(
        derivative_path(out, sub="01", task="x", desc="roi", suffix="scores", extension=".tsv"), pd.DataFrame(rows)
    )
    html = write_participant_report(out, "01").read_text()
    assert "figures/sub-01_task-x_desc-roibars_figure.png" in html
    assert "*: permutation p of the ROI's mean r &lt; 0.05" in html and "<th>p (mean r)</th>" in html
    assert "The smallest alpha of the grid (1) was chosen" in html and "The largest alpha of the grid" in html
    assert "No contrast maps were written" in html and "Not computed: this run wrote no contrast maps" in html
    top = html.split('id="top"')[1]
    assert "PPA 0.40, EarlyVis 0.40" in top


def _group_of_fakes(tmp_path, space: str):
    from bids_taskenc.workflow.group import GroupSettings, run_group

    out = tmp_path / "out"
    for i, participant in enumerate(("01", "02", "03", "04", "05")):
        fake_outputs(out, space=space, seed=i, participant=participant, hot_seed=7)
    run_group(out, out, GroupSettings(n_bootstrap=0, n_permutations=0, offline=True))
    return out


def test_group_maps_are_drawn_on_fsaverage5_in_template_space(tmp_path):
    from bids_taskenc.report import write_group_report
    from bids_taskenc.report.inputs import load_group_maps

    out = _group_of_fakes(tmp_path, "MNI152NLin2009cAsym")
    html = write_group_report(out).read_text()
    figure = out / "figures" / "task-x_desc-groupmaps_figure.png"
    assert figure.stat().st_size > 10_000 and figure.name in html
    maps = load_group_maps(out, "x", ["keypoints3d", "keypoints2d"])
    assert list(maps.meanr) == ["keypoints3d", "keypoints2d"] and maps.meanr["keypoints3d"].shape == (maps.mask.sum(),)
    for label in maps.meanr:
        row = html.split('id="maps"')[1].split(f"<tr><td>{label}</td>")[1].split("</tr>")[0]
        n_sig = int(np.sum(maps.q[label] < 0.05))
        assert n_sig > 0 and row.endswith(f"<td>{n_sig}</td>")
        assert f"<td>{maps.meanr[label].max():.3g}</td>" in row
    assert "flat meshes" in html and "MNI152NLin2009cAsym is an MNI template" in html


def test_group_maps_outside_a_template_are_drawn_as_slices(tmp_path):
    from bids_taskenc.report import write_group_report

    out = _group_of_fakes(tmp_path, "custom")
    html = write_group_report(out).read_text()
    assert "task-x_desc-groupmaps_figure.png" in html and "orthogonal slices" in html
    assert "custom is not an MNI template" in html


@pytest.fixture
def failing_pycortex(fake_pycortex, monkeypatch):
    """The stand-in pycortex whose drawing fails as a transform made for another grid does."""

    def make_figure(braindata, **kwargs):
        raise ValueError("Volume shape (10, 14, 12) does not match transform shape (31, 100, 100)")

    monkeypatch.setattr(sys.modules["cortex"].quickflat, "make_figure", make_figure)
    return fake_pycortex


@pytest.mark.parametrize("space, fallback", [("T1w", "slices"), ("MNI152NLin2009cAsym", "flat")])
def test_failing_pycortex_drawing_falls_back_with_a_warning(tmp_path, failing_pycortex, caplog, space, fallback):
    """Failed before: the exception escaped write_participant_report (the CLI turned it into exit 1)."""
    out = fake_outputs(tmp_path / "out", space=space, shape=(12, 14, 10), voxel_mm=10.0)
    assert choose_view(load_participant(out, "01")).kind == "pycortex"
    with caplog.at_level("WARNING", logger="bids_taskenc.report.brain"):
        html = write_participant_report(out, "01").read_text()
    assert _view_of(html) == fallback
    assert "drawing pycortex subject sub-01 with transform func2anat failed" in html
    assert "does not match transform shape" in html
    warning = [r for r in caplog.records if r.levelname == "WARNING" and "pycortex" in r.getMessage()]
    assert len(warning) == 1  # once, not once per figure
    assert "sub-01" in warning[0].getMessage() and "func2anat" in warning[0].getMessage()
    assert (out / "figures" / "sub-01_task-x_desc-rmaps_figure.png").stat().st_size > 10_000
