"""Slices a neuroscientist reads: anatomy underneath, ROI outlines, orientation letters, even spacing, own scales.

Fake outputs (report_fixtures) name a fake fMRIPrep folder through
``DatasetLinks`` and ``Sources``/``SpatialReference``, as a real run does.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from report_fixtures import fake_fmriprep, fake_outputs

from bids_taskenc.report import brain, rows, write_participant_report
from bids_taskenc.report.brain import MapSpec, SliceCanvas, edges, evenly_spaced, slice_background
from bids_taskenc.report.inputs import find_anatomy, find_roi_masks_of, load_participant

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

T1W = dict(space="T1w", shape=(19, 23, 17), voxel_mm=8.0)


def _grey_tile(canvas: SliceCanvas, n: int) -> np.ndarray:
    spec = MapSpec("x", np.zeros(n), np.zeros(n, bool), "inferno", 0, 1, "r")
    rgb, _ = canvas.tile(spec, brain.plt.get_cmap("inferno"), brain.mcolors.Normalize(0, 1))
    return rgb


def test_t1w_slices_are_drawn_over_the_fmriprep_t1w_found_through_dataset_links(tmp_path):
    out = fake_outputs(tmp_path / "out", fmriprep=tmp_path / "fmriprep", **T1W)
    data = load_participant(out, "01")
    path, _ = find_anatomy(data)
    assert path == tmp_path / "fmriprep" / "sub-01" / "anat" / "sub-01_desc-preproc_T1w.nii.gz"
    underlay, text = slice_background(data)
    assert underlay.shape == data.mask.shape and "preprocessed T1w" in text
    # the anatomy shows through where nothing is coloured: many grey levels instead of one
    n = int(data.mask.sum())
    with_anat = _grey_tile(SliceCanvas(data.mask_img, underlay=underlay), n)
    without = _grey_tile(SliceCanvas(data.mask_img), n)
    assert len(np.unique(with_anat[..., 0])) > 4 and len(np.unique(without[..., 0])) == 2  # mask grey, white
    html = write_participant_report(out, "01").read_text()
    assert "over sub-01&#39;s preprocessed T1w from sub-01/anat/sub-01_desc-preproc_T1w.nii.gz" in html


def test_fmriprep_1x_names_and_template_spaces(tmp_path):
    grid = nib.Nifti1Image(np.ones((4, 4, 4), np.float32), np.eye(4))
    fake_fmriprep(tmp_path / "legacy", "01", "T1w", grid, naming="legacy")
    fake_fmriprep(tmp_path / "mni", "01", "MNI152NLin2009cAsym", grid)
    out = fake_outputs(tmp_path / "out", **T1W)
    data = load_participant(out, "01")
    data.first_sidecar["Sources"] = [str(tmp_path / "legacy" / "sub-01" / "func" / "x.nii.gz")]  # a plain path
    assert find_anatomy(data)[0].name == "sub-01_T1w_preproc.nii.gz"
    data.first_sidecar["Sources"] = [str(tmp_path / "mni" / "sub-01" / "func" / "x.nii.gz")]
    assert find_anatomy(data)[0] is None  # an MNI T1w is no underlay for T1w maps
    data.space = "MNI152NLin2009cAsym"
    assert find_anatomy(data)[0].name == "sub-01_space-MNI152NLin2009cAsym_desc-preproc_T1w.nii.gz"


def test_without_anatomy_the_page_says_so_and_mni_falls_back_to_the_template(tmp_path):
    out = fake_outputs(tmp_path / "out", **T1W)
    data = load_participant(out, "01")
    underlay, text = slice_background(data)
    assert underlay is None and "no anatomical image" in text
    html = write_participant_report(out, "01").read_text()
    assert "grey is the brain mask: no anatomical image" in html
    mni = load_participant(fake_outputs(tmp_path / "mni", space="MNI152NLin2009cAsym"), "01")
    underlay, text = slice_background(mni)
    assert underlay.shape == mni.mask.shape and "nilearn's bundled MNI152 template" in text
    assert np.percentile(underlay[mni.mask], 90) > 0  # the template covers the brain mask


def test_roi_outlines_come_from_the_recorded_roi_directory(tmp_path):
    out = fake_outputs(tmp_path / "out", roi_dir=tmp_path / "rois", **T1W)
    data = load_participant(out, "01")
    rois, text = find_roi_masks_of(data)
    assert sorted(rois) == ["EarlyVis", "PPA"] and str(tmp_path / "rois") in text
    canvas = SliceCanvas(data.mask_img, rois=rois)
    outlines = canvas.outlines(
        canvas.tile(
            MapSpec("x", np.zeros(int(data.mask.sum())), np.zeros(int(data.mask.sum()), bool), "inferno", 0, 1, "r"),
            brain.plt.get_cmap("inferno"),
            brain.mcolors.Normalize(0, 1),
        )[1]
    )
    assert [name for name, _, _ in outlines] == ["EarlyVis", "PPA"] and all(len(s) > 8 for _, _, s in outlines)
    html = write_participant_report(out, "01").read_text()
    assert "ROI outlines from the masks in" in html
    # without a recorded folder: no outlines, and the page says why
    import json

    from bids_taskenc.outputs.naming import derivative_path, sidecar_path

    side = sidecar_path(derivative_path(out, sub="01", task="x", desc="roi", suffix="scores", extension=".tsv"))
    side.write_text(json.dumps({"FDRLevel": 0.05}))
    assert find_roi_masks_of(load_participant(out, "01"))[0] is None
    assert "records no ROIDirectory" in write_participant_report(out, "01").read_text()


def test_voxel_edges_outline_a_region():
    one = np.zeros((3, 3), bool)
    one[1, 1] = True
    assert len(edges(one)) == 4
    block = np.zeros((5, 5), bool)
    block[1:3, 1:4] = True  # 2 x 3 pixels: perimeter 10
    segs = edges(block)
    assert len(segs) == 10 and segs.min() == 1 and segs[:, :, 0].max() == 3 and segs[:, :, 1].max() == 4


@pytest.mark.parametrize("flip", [(1, 1, 1), (-1, 1, 1), (-1, -1, 1)])  # RAS, LAS (radiological storage), LPS
def test_orientation_letters_and_sides_follow_the_affine(flip):
    shape = (9, 11, 7)
    affine = np.diag([3.0 * flip[0], 3.0 * flip[1], 3.0 * flip[2], 1.0])
    affine[:3, 3] = [-(s - 1) * 1.5 * f for s, f in zip(shape, flip)]  # centred on the origin
    mask = np.ones(shape, np.uint8)
    canvas = SliceCanvas(nib.Nifti1Image(mask, affine))
    assert canvas.letters[:3] == [("P", "A"), ("L", "R"), ("L", "R")]
    assert canvas.vletters[:3] == [("I", "S"), ("I", "S"), ("P", "A")]
    assert all(pair == ("L", "R") for pair in canvas.letters[3:])
    # a voxel on the world's right and front is drawn on the right and at the top of the axial panel
    world = nib.affines.apply_affine(affine, np.indices(shape).reshape(3, -1).T)
    values = ((world[:, 0] > 6) & (world[:, 1] > 6)).astype(float).reshape(shape)[mask > 0]
    spec = MapSpec("x", values, values > 0, "inferno", 0, 1, "r")
    rgb, spans = canvas.tile(spec, brain.plt.get_cmap("inferno"), brain.mcolors.Normalize(0, 1))
    left, width = spans[2]
    axial = rgb[left : left + width]
    coloured = np.argwhere(~np.all(np.isclose(axial, brain.MASK_GREY), axis=-1) & ~np.all(axial == 1, axis=-1))
    assert coloured[:, 0].min() > width / 2 and coloured[:, 1].min() > axial.shape[1] / 2


def test_axial_slices_are_evenly_spaced():
    for lo, hi, n in ((0, 52, 6), (3, 40, 6), (0, 12, 6), (5, 9, 6)):
        ks = evenly_spaced(lo, hi, n)
        assert len(set(np.diff(ks))) <= 1 and lo <= ks[0] and ks[-1] < hi
        assert len(ks) == min(n, hi - lo)
    canvas = SliceCanvas(nib.Nifti1Image(np.ones((20, 20, 37), np.uint8), np.eye(4)))
    assert len(set(np.diff(canvas.axial))) == 1 and len(canvas.axial) == 6


def test_noise_ceiling_and_split_half_have_their_own_scales(tmp_path, monkeypatch):
    """Failed before: both on one viridis 0-1 bar, negative split-half r drawn as 0."""
    out = fake_outputs(tmp_path / "out", noise=True, **T1W)
    drawn = {}
    real_draw = brain.draw_rows

    def capture(tiles, specs, canvas, path, *, title):
        drawn[path.name] = list(specs)
        return real_draw(tiles, specs, canvas, path, title=title)

    monkeypatch.setattr(brain, "draw_rows", capture)
    bars = {}
    real_save = rows.save

    def count(fig, path, **kw):
        bars[Path(path).name] = [a.get_ylabel() for a in fig.axes[1:] if a.get_ylabel()]
        return real_save(fig, path, **kw)

    from pathlib import Path

    monkeypatch.setattr(rows, "save", count)
    write_participant_report(out, "01")
    nc, half = drawn["sub-01_task-x_desc-reliabilitymaps_figure.png"]
    data = load_participant(out, "01")
    assert (nc.cmap, nc.vmin) == ("viridis", 0.0) and 0 < nc.vmax <= 1 and "fraction" in nc.label
    assert half.cmap == "RdBu_r" and half.vmin == -half.vmax and half.label == "split-half r"
    assert (data.splithalf < -0.3).sum() > 50  # the map has clearly negative r ...
    assert np.allclose(half.values, data.splithalf)  # ... drawn as it is, below the middle of the scale
    assert bars["sub-01_task-x_desc-reliabilitymaps_figure.png"] == [
        "noise ceiling (fraction of variance)",
        "split-half r",
    ]
    # a bar beside every row (failed before: one bar at the top for all the rows), the scale shared
    assert bars["sub-01_task-x_desc-rmaps_figure.png"] == ["r (test set)"] * 2


def test_template_space_pages_also_draw_the_volume_over_the_template(tmp_path):
    out = fake_outputs(tmp_path / "out", fmriprep=tmp_path / "fmriprep")  # MNI152NLin2009cAsym
    html = write_participant_report(out, "01").read_text()
    assert 'content="flat"' in html and "sub-01_task-x_desc-rslices_figure.png" in html
    assert "sub-01_space-MNI152NLin2009cAsym_desc-preproc_T1w.nii.gz" in html.split("desc-rslices")[1]
    bare = fake_outputs(tmp_path / "bare")
    html = write_participant_report(bare, "01").read_text()
    assert "nilearn&#39;s bundled MNI152 template" in html.split("desc-rslices")[1]
