"""Surface (GIFTI) outputs: fsaverage5 for template spaces, the participant's own surfaces for T1w."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from nilearn import datasets, surface

from bids_taskenc.outputs.naming import derivative_path, sidecar_path
from bids_taskenc.outputs.reading import brain_mask_path, read_sidecar, statmap_path
from bids_taskenc.testing import make_synthetic_dataset

from .conftest import run_app

SMALL = dict(n_participants=1, n_sessions=1, runs_per_session=3, trials_per_run=24, n_repeated=3, shape=(12, 12, 10))


def _run(root, **kw):
    ds = make_synthetic_dataset(root, seed=4, **SMALL, **kw)
    out = root / "out"
    code = run_app(
        ds.bids_dir,
        out,
        "participant",
        "--features-dir",
        ds.features_dir,
        "--work-dir",
        root / "work",
        "--feature-spaces",
        "scene3da",
        "edge2da",
        "--contrast-bootstrap",
        "50",
    )
    assert code == 0
    return ds, out


def _gifti(out, hemi, space, desc, stat):
    return derivative_path(
        out,
        sub="CSI1",
        task="5000scenes",
        hemi=hemi,
        space=space,
        desc=desc,
        stat=stat,
        suffix="statmap",
        extension=".func.gii",
    )


@pytest.mark.slow
def test_template_space_maps_go_to_fsaverage5(tmp_path):
    ds, out = _run(tmp_path, space="MNI152NLin2009cAsym")
    fs = datasets.load_fsaverage("fsaverage5")
    vol = statmap_path(out, "CSI1", "5000scenes", "MNI152NLin2009cAsym", "scene3da", "r")
    for hemi, side in (("L", "left"), ("R", "right")):
        for desc, stat in (
            ("scene3da", "r"),
            ("scene3da", "alpha"),
            ("scene3da", "q"),
            ("noise", "noiseceiling"),
            ("group3DVSgroup2D", "rdiff"),
        ):
            assert _gifti(out, hemi, "fsaverage5", desc, stat).is_file(), (hemi, desc, stat)
        gii = nib.load(_gifti(out, hemi, "fsaverage5", "scene3da", "r"))
        values = gii.darrays[0].data
        assert values.shape == (10242,)
        assert gii.meta["AnatomicalStructurePrimary"] == {"L": "CortexLeft", "R": "CortexRight"}[hemi]
        # the same sampling as nilearn's on the volume map, inside the brain mask
        mask = brain_mask_path(out, "CSI1", "5000scenes", "MNI152NLin2009cAsym")
        expected = surface.vol_to_surf(
            str(vol), fs["pial"].parts[side], inner_mesh=fs["white_matter"].parts[side], mask_img=str(mask)
        )
        finite = np.isfinite(expected)
        assert finite.sum() > 50  # the small synthetic box still reaches some vertices
        np.testing.assert_array_equal(np.isfinite(values), finite)
        np.testing.assert_allclose(values[finite], expected[finite], atol=1e-5)
        alpha = nib.load(_gifti(out, hemi, "fsaverage5", "scene3da", "alpha")).darrays[0].data
        grid = read_sidecar(sidecar_path(vol))["AlphaGrid"]
        assert np.all(np.isin(alpha[np.isfinite(alpha)], np.float32(grid)))
    meta = read_sidecar(sidecar_path(_gifti(out, "L", "fsaverage5", "scene3da", "q")))
    assert "not recomputed" in meta["SurfaceNote"] and meta["SurfaceSampling"]["Interpolation"] == "linear"


@pytest.mark.slow
@pytest.mark.parametrize("naming", ["modern", "legacy"])
def test_t1w_maps_go_to_the_participants_own_surfaces(tmp_path, naming):
    ds, out = _run(tmp_path, fmriprep_naming=naming, surfaces=True)
    pial = [
        p
        for p in sorted((ds.fmriprep_dir / "sub-CSI1" / "anat").glob("*pial*.surf.gii"))
        if "hemi-L" in p.name or ".L." in p.name
    ]
    n_vertices = nib.load(pial[0]).darrays[0].data.shape[0]
    values = nib.load(_gifti(out, "L", "fsnative", "scene3da", "r")).darrays[0].data
    assert values.shape == (n_vertices,) and np.isfinite(values).mean() > 0.9
    meta = read_sidecar(sidecar_path(_gifti(out, "R", "fsnative", "scene3da", "r")))
    assert "fMRIPrep surfaces" in meta["SurfaceSource"]


@pytest.mark.slow
def test_t1w_without_surfaces_writes_no_gifti_and_says_why(tmp_path, capfd):
    _, out = _run(tmp_path)
    assert not list(out.rglob("*.gii"))
    assert "no GIFTI maps written" in capfd.readouterr().err
    sidecar = read_sidecar(sidecar_path(statmap_path(out, "CSI1", "5000scenes", "T1w", "scene3da", "r")))
    assert "no GIFTI" in sidecar["Surfaces"]


def test_chunked_sampling_equals_one_call(tmp_path):
    """Maps sampled a few at a time give the same vertices as all at once (and as nilearn on each map)."""
    from bids_taskenc.bids.surfaces import fsaverage5_surfaces
    from bids_taskenc.outputs.surfaces import project_statmaps

    rng = np.random.default_rng(0)
    shape, affine = (20, 24, 20), np.diag([6.0, 6.0, 6.0, 1.0])
    affine[:3, 3] = [-60, -80, -50]
    mask = rng.random(shape) > 0.2
    mask_img = nib.Nifti1Image(mask.astype(np.uint8), affine)

    def unmask(values, fill):
        vol = np.full(shape, fill, np.float32)
        vol[mask] = values
        return nib.Nifti1Image(vol, affine)

    maps = [
        (rng.standard_normal(mask.sum()).astype(np.float32), 0.0, {}, dict(sub="CSI1", desc=f"m{i}", stat="r"))
        for i in range(5)
    ]
    surfaces = fsaverage5_surfaces()
    one = project_statmaps(tmp_path / "one", maps, surfaces, unmask=unmask, mask_img=mask_img)
    two = project_statmaps(tmp_path / "two", maps, surfaces, unmask=unmask, mask_img=mask_img, chunk=2)
    assert len(one) == len(two) == 10
    for a, b in zip(sorted(one), sorted(two)):
        np.testing.assert_array_equal(nib.load(a).darrays[0].data, nib.load(b).darrays[0].data)
    fs = datasets.load_fsaverage("fsaverage5")
    expected = surface.vol_to_surf(
        unmask(maps[3][0], 0.0),
        fs["pial"].parts["left"],
        inner_mesh=fs["white_matter"].parts["left"],
        mask_img=mask_img,
    )
    got = nib.load(next(p for p in two if "desc-m3" in p.name and "hemi-L" in p.name)).darrays[0].data
    np.testing.assert_allclose(got, expected, atol=1e-5)
