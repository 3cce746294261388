"""Our outputs read right by pybids (each map its own sidecar, selectable by stat) and by NIfTI/GIFTI readers."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from bids_taskenc.outputs.derivatives import write_dataset_description, write_mask, write_statmap
from bids_taskenc.outputs.intents import statistic_intent
from bids_taskenc.outputs.naming import sidecar_path
from bids_taskenc.outputs.surfaces import write_surface_statmap

STATS = ("r", "rsquared", "p", "q", "alpha", "cvscore", "rsquarednorm")
N_TEST = 40
SPACE = "MNI152NLin2009cAsym"


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """Two feature spaces' seven maps (volume and both hemispheres), each sidecar different, as the app writes them."""
    root = tmp_path_factory.mktemp("out")
    write_dataset_description(root, source_dir=root.parent)
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    mask = nib.Nifti1Image(np.ones((4, 4, 3), np.uint8), affine)
    ents = dict(sub="01", task="x", space=SPACE)
    write_mask(root, mask, {"Description": "brain"}, **ents)
    rng = np.random.default_rng(0)
    for desc in ("keypoints3d", "edgetexture"):
        for i, stat in enumerate(STATS):
            meta = {"Split": {"NTest": N_TEST}, "FeatureLabel": desc, "Units": f"units of {stat}", "Order": i}
            img = nib.Nifti1Image(rng.random((4, 4, 3)).astype(np.float32), affine)
            write_statmap(root, img, meta, desc=desc, stat=stat, **ents)
            for hemi in ("L", "R"):
                write_surface_statmap(
                    root, rng.random(10), hemi, meta, sub="01", task="x", space="fsaverage5", desc=desc, stat=stat
                )
    return root


def test_every_map_reads_its_own_sidecar_through_pybids(outputs):
    from bids_taskenc.outputs import layout

    lay = layout(outputs)
    maps = lay.get(suffix="statmap", extension=[".nii.gz", ".func.gii"])
    assert len(maps) == 2 * len(STATS) * 3
    for f in maps:
        own = json.loads(sidecar_path(f.path).read_text())
        assert lay.get_metadata(f.path) == own, f.filename
        assert own["Statistic"] == f.entities["stat"]


def test_a_statistic_is_selected_by_its_entity(outputs):
    from bids_taskenc.outputs import layout

    lay = layout(outputs)
    got = lay.get(subject="01", desc="keypoints3d", stat="r", extension=".nii.gz")
    assert [f.filename for f in got] == [f"sub-01_task-x_space-{SPACE}_desc-keypoints3d_stat-r_statmap.nii.gz"]
    assert lay.get_metadata(got[0].path)["Statistic"] == "r"
    assert sorted(lay.get(return_type="id", target="stat", desc="edgetexture")) == sorted(STATS)
    assert len(lay.get(stat="q", hemi="L", extension=".func.gii")) == 2


@pytest.mark.parametrize(
    ("stat", "code", "params", "name"),
    [
        ("r", "correlation", (N_TEST - 2.0,), "r"),
        ("p", "p value", (), "p"),
        ("q", "p value", (), "BH-FDR q"),
        ("alpha", "estimate", (), "alpha"),
        ("rsquared", "estimate", (), "rsquared"),
    ],
)
def test_nifti_and_gifti_intents_say_what_the_map_holds(outputs, stat, code, params, name):
    func = outputs / "sub-01" / "func"
    img = nib.load(func / f"sub-01_task-x_space-{SPACE}_desc-keypoints3d_stat-{stat}_statmap.nii.gz")
    assert img.header.get_intent() == (code, params, name)
    surface = func / f"sub-01_task-x_hemi-L_space-fsaverage5_desc-keypoints3d_stat-{stat}_statmap.func.gii"
    gii = nib.load(surface)
    array = gii.darrays[0]
    assert array.intent == nib.nifti1.intent_codes.code[code]
    assert [float(array.meta[k]) for k in sorted(k for k in array.meta if k.startswith("intent_p"))] == list(params)
    sidecar = json.loads(sidecar_path(surface).read_text())
    assert not any(k.startswith("intent_p") for k in sidecar)


def test_intent_rules():
    assert statistic_intent("t", dof=4).code == "t test" and statistic_intent("t", dof=4).params == (4.0,)
    assert statistic_intent("uniqueqscene3d").name == "BH-FDR q"
    assert statistic_intent("uniquepscene3d").code == "p value"
    assert statistic_intent("r").code == "estimate"  # no test-set size: no degrees of freedom to state
    assert statistic_intent("uniquersquaredscenes3dlong").name == "uniquersquaredsc"
