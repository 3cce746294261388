"""Taskonomy affinities: loader on the real files, name map, download + sha256 + cache."""

from __future__ import annotations

import hashlib
import http.server
import shutil
import threading
from functools import partial

import numpy as np
import pandas as pd
import pytest
from group_synthetic import REFERENCE_DIR

from bids_taskenc.core import download
from bids_taskenc.group import reference as ref
from bids_taskenc.outputs.naming import bids_label

needs_reference = pytest.mark.skipif(not REFERENCE_DIR.is_dir(), reason=f"{REFERENCE_DIR} absent")

BANK_TASKS = {
    "autoencoding",
    "class_object",
    "class_scene",
    "colorization",
    "curvature",
    "denoising",
    "depth_euclidean",
    "depth_zbuffer",
    "edge_occlusion",
    "edge_texture",
    "egomotion",
    "fixated_pose",
    "inpainting",
    "jigsaw",
    "keypoints2d",
    "keypoints3d",
    "nonfixated_pose",
    "normal",
    "point_matching",
    "reshading",
    "room_layout",
    "segment_semantic",
    "segment_unsup25d",
    "segment_unsup2d",
    "vanishing_point",
}


@needs_reference
def test_hard_coded_sha256_matches_reference_copy():
    assert ref.sha256_of(REFERENCE_DIR / "all_affinities.pkl") == ref.AFFINITIES_SHA256


@pytest.mark.parametrize("version", sorted(ref.BUNDLED_TABLES))
def test_bundled_tables_load_offline_with_their_licence(version):
    """Every clone can compare with Taskonomy: the tables and the MIT licence are package data, read without network."""
    path = ref.bundled_affinities(version)
    assert path.suffix == ".tsv" and path.parent == ref.BUNDLED_DIR
    licence = (ref.BUNDLED_DIR / "LICENSE.taskonomy").read_text()
    assert "MIT License" in licence and "Stanford Vision and Learning Group" in licence
    frame = ref.load_affinities(path)
    assert {"normal", "depth_zbuffer", "keypoints3d", "class_object", "class_scene", "segment_semantic"} <= set(
        frame.columns
    )
    assert frame.shape == (22, 25) and "self" not in frame.columns and "random" not in frame.columns
    assert ref.bundled_provenance(version)["sha256"] == ref.sha256_of(path)


def test_unknown_bundled_table_is_refused():
    with pytest.raises(ref.ReferenceDataError, match="one of"):
        ref.bundled_affinities("2k")


@needs_reference
@pytest.mark.parametrize("version", sorted(ref.BUNDLED_TABLES))
def test_bundled_table_equals_the_published_pickle(version):
    """The shipped text holds the pickle's first-order numbers exactly (17 significant digits)."""
    bundled = ref.load_affinities(ref.bundled_affinities(version))
    original = ref.load_affinities(REFERENCE_DIR / ref.BUNDLED_SOURCES[version])
    pd.testing.assert_frame_equal(bundled, original, check_exact=True)


def test_real_transfer_out_structure_groups_3d_tasks():
    frame = ref.label_affinities(ref.load_affinities(ref.bundled_affinities()))
    tasks = ["normal", "reshading", "depthzbuffer", "edgetexture", "autoencoding", "classobject"]
    sim = ref.transfer_out_similarity(frame, tasks)
    assert sim.shape == (6, 6)
    np.testing.assert_allclose(np.diag(sim), 1.0)
    # surface normals transfer out more like reshading than like autoencoding
    assert sim.loc["normal", "reshading"] > sim.loc["normal", "autoencoding"]


def test_class_scene_is_class_selected_in_the_default_table():
    """The default pickle has no class_places: class_scene is Taskonomy's class_selected there."""
    raw = pd.read_csv(ref.bundled_affinities(), sep="\t").set_index("target")
    default = ref.load_affinities(ref.bundled_affinities())
    assert "class_places" not in raw.columns
    assert default.loc["normal", "class_scene"] == raw.loc["rgb2sfnorm", "class_selected"]
    table_16k = ref.load_affinities(ref.bundled_affinities("16k"))
    raw_16k = pd.read_csv(ref.bundled_affinities("16k"), sep="\t").set_index("target")
    assert table_16k.loc["normal", "class_scene"] == raw_16k.loc["rgb2sfnorm", "class_places"]


def test_url_is_the_raw_github_file():
    assert ref.AFFINITIES_URL.startswith("https://raw.githubusercontent.com/StanfordVL/taskonomy/")
    assert ref.AFFINITIES_URL.endswith("/results/affinities/all_affinities.pkl")


def test_every_2018_name_maps_to_the_model_bank():
    assert set(ref.TASKONOMY_NAMES.values()) == BANK_TASKS
    assert bids_label(ref.TASKONOMY_NAMES["rgb2depth"]) == "depthzbuffer"
    assert bids_label(ref.TASKONOMY_NAMES["rgb2sfnorm"]) == "normal"


@needs_reference
@pytest.mark.parametrize("name", ["all_affinities.pkl", "all_affinities_16k.pkl", "all_affinities_1k.pkl"])
def test_loader_reads_real_pickles(name):
    frame = ref.load_affinities(REFERENCE_DIR / name)
    assert set(frame.columns) <= BANK_TASKS and set(frame.index) <= BANK_TASKS
    assert {"normal", "depth_zbuffer", "keypoints3d", "class_object", "class_scene", "segment_semantic"} <= set(
        frame.columns
    )
    assert "self" not in frame.columns and "random" not in frame.columns
    assert frame.shape[1] >= 24 and frame.shape[0] >= 22
    assert np.isfinite(frame.loc["normal", "depth_zbuffer"])
    labelled = ref.label_affinities(frame)
    assert "depthzbuffer" in labelled.columns and "segmentunsup25d" in labelled.index


@needs_reference
@pytest.mark.parametrize("suffix", ["default", "16k", "1k"])
def test_csv_matches_pickle(suffix):
    pkl = {"default": "all_affinities.pkl", "16k": "all_affinities_16k.pkl", "1k": "all_affinities_1k.pkl"}[suffix]
    from_csv = ref.load_affinities(REFERENCE_DIR / f"first_order_affinity_{suffix}.csv")
    from_pkl = ref.load_affinities(REFERENCE_DIR / pkl)
    common_rows = from_pkl.index.intersection(from_csv.index)
    common_cols = from_pkl.columns.intersection(from_csv.columns)
    assert len(common_rows) >= 22 and len(common_cols) >= 24
    a = from_pkl.loc[common_rows, common_cols].to_numpy()
    b = from_csv.loc[common_rows, common_cols].to_numpy()
    np.testing.assert_allclose(a[np.isfinite(a)], b[np.isfinite(a)], rtol=1e-9)


@needs_reference
def test_class_scene_prefers_class_places():
    raw = pd.read_csv(REFERENCE_DIR / "first_order_affinity_16k.csv").set_index("target")
    frame = ref.load_affinities(REFERENCE_DIR / "all_affinities_16k.pkl")
    assert frame.loc["normal", "class_scene"] == pytest.approx(raw.loc["rgb2sfnorm", "class_places"])
    # the default pickle has only class_selected
    default = ref.load_affinities(REFERENCE_DIR / "all_affinities.pkl")
    raw_default = pd.read_csv(REFERENCE_DIR / "first_order_affinity_default.csv").set_index("target")
    assert default.loc["normal", "class_scene"] == pytest.approx(raw_default.loc["rgb2sfnorm", "class_selected"])


def test_long_csv(tmp_path):
    path = tmp_path / "aff.tsv"
    path.write_text(
        "source\ttarget\taffinity\nrgb2depth\trgb2sfnorm\t0.3\nrgb2sfnorm\trgb2depth\t0.2\nself\trgb2depth\t1\n"
    )
    frame = ref.load_affinities(path)
    assert frame.loc["normal", "depth_zbuffer"] == 0.3
    assert frame.loc["depth_zbuffer", "normal"] == 0.2
    assert "self" not in frame.columns


def test_unreadable_file(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ref.ReferenceDataError, match="bad.csv"):
        ref.load_affinities(path)
    with pytest.raises(ref.ReferenceDataError, match="does not exist"):
        ref.load_affinities(tmp_path / "missing.pkl")


@pytest.fixture
def source_file(tmp_path):
    path = tmp_path / "remote" / "all_affinities.pkl"
    path.parent.mkdir()
    path.write_bytes(b"pretend pickle bytes")
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def test_fetch_good_hash_caches(source_file, tmp_path):
    path, digest = source_file
    cache = tmp_path / "cache"
    got = ref.fetch_affinities(cache, url=path.as_uri(), sha256=digest)
    assert got == cache / "all_affinities.pkl" and got.read_bytes() == path.read_bytes()
    path.unlink()  # served from the cache now, even offline
    assert (
        ref.fetch_affinities(
            cache, url=(tmp_path / "remote" / "all_affinities.pkl").as_uri(), sha256=digest, offline=True
        )
        == got
    )
    assert sorted(p.name for p in cache.iterdir()) == ["all_affinities.pkl"]


def test_fetch_bad_hash_leaves_nothing(source_file, tmp_path, monkeypatch):
    monkeypatch.setattr(download, "RETRIES", 0)  # pooch waits 1 s before each retry
    path, _ = source_file
    cache = tmp_path / "cache"
    with pytest.raises(ref.ReferenceDataError, match="sha256 mismatch"):
        ref.fetch_affinities(cache, url=path.as_uri(), sha256="0" * 64)
    assert not any(cache.iterdir())


def test_fetch_replaces_corrupt_cache(source_file, tmp_path):
    path, digest = source_file
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "all_affinities.pkl").write_bytes(b"corrupt")
    assert ref.fetch_affinities(cache, url=path.as_uri(), sha256=digest).read_bytes() == path.read_bytes()


def test_fetch_offline_missing(source_file, tmp_path):
    path, digest = source_file
    assert ref.fetch_affinities(tmp_path / "cache", url=path.as_uri(), sha256=digest, offline=True) is None
    assert not (tmp_path / "cache" / "all_affinities.pkl").exists()


def test_fetch_unreachable(tmp_path):
    with pytest.raises(ref.ReferenceDataError, match="cannot download"):
        ref.fetch_affinities(tmp_path / "cache", url=(tmp_path / "nope.pkl").as_uri(), sha256="0" * 64)


def test_fetch_over_http(source_file, tmp_path):
    path, digest = source_file
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(path.parent))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/all_affinities.pkl"
        got = ref.fetch_affinities(tmp_path / "cache", url=url, sha256=digest, timeout=10)
        assert got.read_bytes() == path.read_bytes()
    finally:
        server.shutdown()
        server.server_close()


@needs_reference
def test_fetch_real_file_from_local_copy(tmp_path):
    src = tmp_path / "all_affinities.pkl"
    shutil.copyfile(REFERENCE_DIR / "all_affinities.pkl", src)
    got = ref.fetch_affinities(tmp_path / "cache", url=src.as_uri())  # default sha256
    assert ref.load_affinities(got).shape[1] >= 24


def test_default_cache_dir_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert ref.default_cache_dir() == tmp_path / "bids_taskenc" / "reference"
