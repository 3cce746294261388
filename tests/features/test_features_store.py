"""Weights store: download (local server), offline, corrupt and custom files, the models CLI."""

from __future__ import annotations

import functools
import hashlib
import http.server
import logging
import threading

import pytest

from bids_taskenc.cli import models as models_cli
from bids_taskenc.core import download
from bids_taskenc.features import store
from bids_taskenc.features import taskonomy as T
from bids_taskenc.features.base import FeatureError
from bids_taskenc.features.registry import resolve_feature_spaces


@pytest.fixture
def served(tmp_path, monkeypatch):
    """An http.server on 127.0.0.1 serving a fake 'keypoints3d' file whose hash is made the published one."""
    root = tmp_path / "served"
    root.mkdir()
    payload = b"not really weights, but bytes with a known hash\n" * 1000
    digest = hashlib.sha256(payload).hexdigest()
    monkeypatch.setitem(T.ENCODER_SHA256, "keypoints3d", digest)
    (root / f"keypoints3d_encoder-{digest}.pth").write_bytes(payload)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(store.ENV_URL, f"http://127.0.0.1:{server.server_address[1]}/")
    yield root, digest, payload
    server.shutdown()
    server.server_close()


def test_default_dir_honours_env(monkeypatch, tmp_path):
    monkeypatch.delenv(store.ENV_DIR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert store.default_weights_dir() == tmp_path / "xdg" / "bids_taskenc" / "models"
    monkeypatch.setenv(store.ENV_DIR, str(tmp_path / "m"))
    assert store.default_weights_dir() == tmp_path / "m"


def test_download_from_local_server(served, tmp_path):
    _, digest, payload = served
    dest = tmp_path / "store"
    wf = store.ensure_weights("keypoints3d", dest, progress=False)
    assert wf.published and wf.sha256 == digest
    assert wf.path.read_bytes() == payload
    assert sorted(p.name for p in dest.iterdir() if not p.name.startswith(".")) == [wf.path.name]
    assert not list(dest.glob("*.part"))


def test_download_with_wrong_hash_installs_nothing(served, tmp_path, monkeypatch):
    monkeypatch.setattr(download, "RETRIES", 0)  # pooch waits 1 s before each retry
    root, digest, _ = served
    other = "0" * 64
    monkeypatch.setitem(T.ENCODER_SHA256, "keypoints3d", other)
    (root / f"keypoints3d_encoder-{other}.pth").write_bytes(b"tampered")
    dest = tmp_path / "store"
    with pytest.raises(FeatureError, match="sha256"):
        store.download("keypoints3d", dest, progress=False)
    assert list(dest.iterdir()) == []


def test_download_failure_names_file_and_remedy(tmp_path, monkeypatch):
    monkeypatch.setenv(store.ENV_URL, (tmp_path / "nowhere").as_uri())
    with pytest.raises(FeatureError, match="bids_taskenc-models fetch"):
        store.download("normal", tmp_path / "store", progress=False)


def test_offline_missing_is_one_clear_line(tmp_path):
    with pytest.raises(FeatureError) as err:
        store.ensure_weights("normal", tmp_path / "empty", offline=True)
    msg = str(err.value)
    assert "\n" not in msg
    assert store.published_filename("normal") in msg
    assert store.weights_url("normal") in msg and "bids_taskenc-models fetch --tasks normal" in msg
    with pytest.raises(FeatureError, match="--offline"):
        resolve_feature_spaces(["taskonomy:normal"], weights_dir=tmp_path / "empty", offline=True)


def test_custom_weights_warn_and_enter_provenance(weights_store, caplog):
    with caplog.at_level(logging.WARNING, logger="bids_taskenc.features.store"):
        (space,) = resolve_feature_spaces(["taskonomy:normal"], weights_dir=weights_store, offline=True)
    warned = [r for r in caplog.records if r.name == "bids_taskenc.features.store" and r.levelno == logging.WARNING]
    assert len(warned) == 1 and "custom weights for task 'normal'" in warned[0].getMessage()
    digest = next(weights_store.glob("normal_*")).name.split("-")[-1][:-4]
    assert space.provenance["weights_sha256"] == digest
    assert space.provenance["weights_published"] is False


def test_corrupt_file_is_an_error(tmp_path):
    fake = tmp_path / f"normal_encoder-{'ab' * 32}.pth"
    fake.write_bytes(b"truncated")
    with pytest.raises(FeatureError, match="corrupt"):
        store.ensure_weights("normal", tmp_path, offline=True)


def test_verification_stamp_and_later_corruption(tmp_path):
    payload = b"x" * 100
    digest = hashlib.sha256(payload).hexdigest()
    f = tmp_path / f"normal_encoder-{digest}.pth"
    f.write_bytes(payload)
    store.locate("normal", tmp_path)
    assert (tmp_path / f".{f.name}.verified").exists()
    f.write_bytes(b"y" * 101)  # size (and mtime) change -> re-hashed
    with pytest.raises(FeatureError, match="corrupt"):
        store.locate("normal", tmp_path)


def test_two_files_for_one_task_is_ambiguous(tmp_path):
    for h in ("a" * 64, "b" * 64):
        (tmp_path / f"normal_encoder-{h}.pth").write_bytes(b"")
    with pytest.raises(FeatureError, match="keep exactly one"):
        store.locate("normal", tmp_path)


def test_models_cli(served, tmp_path, capsys):
    dest = tmp_path / "store"
    assert models_cli.main(["fetch", "--tasks", "keypoints3d", "--dir", str(dest), "--offline"]) == 1
    assert models_cli.main(["fetch", "--tasks", "keypoints3d", "--dir", str(dest)]) == 0
    assert models_cli.main(["verify", "--tasks", "keypoints3d", "--dir", str(dest)]) == 0
    assert models_cli.main(["list", "--tasks", "all", "--dir", str(dest)]) == 0
    out = capsys.readouterr().out
    assert "keypoints3d" in out and "published" in out and "multi-view" in out
    f = next(dest.glob("keypoints3d_*.pth"))
    f.write_bytes(b"corrupted")
    assert models_cli.main(["verify", "--tasks", "keypoints3d", "--dir", str(dest)]) == 1
    assert models_cli.main(["verify", "--tasks", "nosuchtask", "--dir", str(dest)]) == 64
    with pytest.raises(SystemExit) as exc:
        models_cli.main(["frobnicate"])
    assert exc.value.code == 64


def test_download_goes_through_pooch_with_retries(served, tmp_path, monkeypatch):
    """The hand-written streaming loop is gone: pooch fetches, with RETRIES extra tries."""
    import pooch

    seen = {}
    real = pooch.create

    def spy(*a, **k):
        seen.update(k)
        return real(*a, **k)

    monkeypatch.setattr(pooch, "create", spy)
    wf = store.ensure_weights("keypoints3d", tmp_path / "store", progress=False)
    assert seen["retry_if_failed"] == download.RETRIES >= 1
    assert seen["registry"] == {wf.path.name: f"sha256:{wf.sha256}"}
