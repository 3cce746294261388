"""Sidecars name their inputs as BIDS URIs that DatasetLinks resolve, so they survive moving the data."""

from __future__ import annotations

import json

import pytest

from bids_taskenc.outputs.derivatives import bids_uri, dataset_links, read_dataset_links
from bids_taskenc.outputs.naming import sidecar_path
from bids_taskenc.outputs.reading import read_sidecar, statmap_path


def _resolve(uri: str, links: dict):
    _, name, rel = uri.split(":", 2)
    return links[name] / rel


@pytest.mark.slow
def test_sources_and_spatial_reference_resolve_through_dataset_links(modern_run):
    ds, out = modern_run
    links = read_dataset_links(out)
    assert links["raw"] == ds.bids_dir.resolve()
    r_path = statmap_path(out, "CSI1", "5000scenes", "T1w", "scene3da", "r")
    meta = read_sidecar(sidecar_path(r_path))
    assert meta["Sources"] and all(s.startswith("bids:fmriprep:sub-CSI1/") for s in meta["Sources"])
    assert all(_resolve(s, links).is_file() for s in meta["Sources"])
    assert _resolve(meta["SpatialReference"], links).is_file()


def test_link_names_stay_stable_across_runs(tmp_path):
    raw, prep, other = tmp_path / "bids", tmp_path / "bids" / "derivatives" / "fmriprep", tmp_path / "x" / "fmriprep"
    for folder in (raw, prep, other):
        folder.mkdir(parents=True, exist_ok=True)
    first = dataset_links(raw, [prep])
    assert first == {"raw": raw.resolve(), "fmriprep": prep.resolve()}
    # the innermost dataset names a file
    assert bids_uri(prep / "sub-1" / "f.nii.gz", first) == "bids:fmriprep:sub-1/f.nii.gz"
    assert bids_uri(raw / "sub-1" / "e.tsv", first) == "bids:raw:sub-1/e.tsv"
    assert bids_uri(tmp_path / "elsewhere.nii", first) == str((tmp_path / "elsewhere.nii").resolve())
    # a later job with another folder of the same name gets a new name; a known folder keeps its own
    second = dataset_links(raw, [other, prep], existing=first)
    assert second == {"raw": raw.resolve(), "fmriprep2": other.resolve(), "fmriprep": prep.resolve()}


def test_dataset_description_accumulates_links(tmp_path):
    from bids_taskenc.outputs.derivatives import write_dataset_description

    out, raw = tmp_path / "out", tmp_path / "bids"
    out.mkdir()
    raw.mkdir()
    write_dataset_description(out, source_dir=raw, links={"raw": raw, "a": tmp_path / "a"})
    write_dataset_description(out, source_dir=raw, links={"raw": raw, "b": tmp_path / "b"})
    assert set(read_dataset_links(out)) == {"raw", "a", "b"}
    assert read_dataset_links(out)["a"] == (tmp_path / "a").resolve()


@pytest.mark.slow
def test_betas_run_names_its_betas_as_sources(small_copy):
    """--responses betas end to end: betas written from the events, Sources and SpatialReference point at them."""
    import nibabel as nib
    import numpy as np
    import pandas as pd

    from .conftest import run_app

    bids = small_copy / "bids"
    betas = small_copy / "betas"
    rng = np.random.default_rng(0)
    bold = sorted((bids / "derivatives" / "fmriprep").rglob("*desc-preproc_bold.nii.gz"))[0]
    grid = nib.load(bold)
    for ses_dir in sorted((bids / "sub-CSI1").glob("ses-*")):
        events = [pd.read_csv(p, sep="\t") for p in sorted((ses_dir / "func").glob("*_events.tsv"))]
        stimuli = pd.concat(events)["stim_file"].tolist()
        folder = betas / "sub-CSI1" / ses_dir.name / "func"
        folder.mkdir(parents=True)
        stem = f"sub-CSI1_{ses_dir.name}_task-5000scenes_space-T1w_desc-singletrial_betas"
        data = rng.normal(0, 1, grid.shape[:3] + (len(stimuli),)).astype(np.float32)
        nib.save(nib.Nifti1Image(data, grid.affine), folder / f"{stem}.nii.gz")
        pd.DataFrame({"stimulus": stimuli}).to_csv(folder / f"{stem}.tsv", sep="\t", index=False)
    out = small_copy / "out"
    assert (
        run_app(
            bids,
            out,
            "participant",
            "--features-dir",
            bids / "derivatives" / "features",
            "--work-dir",
            small_copy / "work",
            "--feature-spaces",
            "user:scene3da",
            "--responses",
            "betas",
            "--betas-dir",
            betas,
            "--contrast-bootstrap",
            "0",
            "--no-reports",
        )
        == 0
    )
    links = read_dataset_links(out)
    assert set(links) >= {"raw", "betas"}
    meta = read_sidecar(sidecar_path(statmap_path(out, "CSI1", "5000scenes", "T1w", "scene3da", "r")))
    assert meta["Responses"]["ResponseModel"] == "betas"
    assert meta["Sources"] and all(s.startswith("bids:betas:sub-CSI1/") for s in meta["Sources"])
    assert meta["SpatialReference"] == meta["Sources"][0] and _resolve(meta["SpatialReference"], links).is_file()


def test_links_inside_the_input_dataset_are_relative_and_survive_a_move(tmp_path):
    """DatasetLinks were absolute file:// paths, false once the dataset moved; inside it they are now relative
    (BIDS resolves a scheme-less DatasetLinks entry against the dataset root)."""
    import shutil

    from bids_taskenc.outputs.derivatives import write_dataset_description

    raw = tmp_path / "site1" / "bids"
    prep, out, elsewhere = raw / "derivatives" / "fmriprep", raw / "derivatives" / "bids_taskenc", tmp_path / "betas"
    for folder in (prep, out, elsewhere):
        folder.mkdir(parents=True)
    write_dataset_description(out, source_dir=raw, links={"raw": raw, "fmriprep": prep, "betas": elsewhere})
    desc = json.loads((out / "dataset_description.json").read_text())
    assert desc["DatasetLinks"] == {"raw": "../..", "fmriprep": "../fmriprep", "betas": elsewhere.resolve().as_uri()}
    assert desc["SourceDatasets"] == [{"URL": "bids:raw:"}]
    moved = tmp_path / "site2" / "bids"
    moved.parent.mkdir()
    shutil.move(raw, moved)
    links = read_dataset_links(moved / "derivatives" / "bids_taskenc")
    assert links["raw"] == moved.resolve() and links["fmriprep"] == (moved / "derivatives" / "fmriprep").resolve()
    assert links["betas"] == elsewhere.resolve()


def test_output_outside_the_input_keeps_absolute_links(tmp_path):
    from bids_taskenc.outputs.derivatives import write_dataset_description

    raw, out = tmp_path / "bids", tmp_path / "out"
    raw.mkdir()
    out.mkdir()
    write_dataset_description(out, source_dir=raw, links={"raw": raw})
    desc = json.loads((out / "dataset_description.json").read_text())
    assert desc["DatasetLinks"] == {"raw": raw.resolve().as_uri()}
    assert read_dataset_links(out) == {"raw": raw.resolve()}
