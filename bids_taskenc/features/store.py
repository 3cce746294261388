"""Weights store: a folder of ``{task}_encoder-{sha256}.pth`` files.

* Location: an explicit argument (the CLI's ``--taskonomy-weights DIR``), else
  ``$BIDS_TASKENC_MODELS``, else ``$XDG_CACHE_HOME/bids_taskenc/models``
  (``~/.cache/bids_taskenc/models``).
* A missing published file is downloaded on first use from
  ``$BIDS_TASKENC_MODELS_URL`` (default: the visualpriors release) with pooch
  (temporary name, sha256 checked against the name, retries, progress bar),
  then moved into place. With
  ``offline=True`` nothing is downloaded; a missing file is an error that says
  how to get it.
* Every file's content must hash to the sha256 in its name (else: corrupt).
  A file whose name carries another hash than the published one is custom
  (fine-tuned) weights: accepted with a warning (logged, at WARNING, on
  ``bids_taskenc.features.store``); its hash goes into provenance.
* A full hash of ~95 MB costs ~0.2 s; a verified file gets a stamp
  (``.{name}.verified``: size, mtime, sha256) so later runs skip re-hashing.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..core.atomic import atomic_path
from .base import FeatureError, FeatureInputMissing
from .taskonomy_tasks import ENCODER_SHA256, canonical_task

DEFAULT_BASE_URL = "https://github.com/alexsax/visual-prior/raw/networks/assets/pytorch/"
ENV_DIR = "BIDS_TASKENC_MODELS"
ENV_URL = "BIDS_TASKENC_MODELS_URL"

_CHUNK = 1 << 20

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WeightsFile:
    """One verified encoder file in the store."""

    task: str
    path: Path
    sha256: str
    published: bool

    @property
    def url(self) -> str | None:
        return weights_url(self.task) if self.published else None


def default_weights_dir() -> Path:
    """``$BIDS_TASKENC_MODELS``, else ``$XDG_CACHE_HOME/bids_taskenc/models`` (``~/.cache`` when unset)."""
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "bids_taskenc" / "models"


def weights_dir(path: str | Path | None = None) -> Path:
    """``path`` if given, else :func:`default_weights_dir`."""
    return Path(path).expanduser() if path else default_weights_dir()


def published_filename(task: str) -> str:
    task = canonical_task(task)
    return f"{task}_encoder-{ENCODER_SHA256[task]}.pth"


def base_url() -> str:
    """Download base URL: ``$BIDS_TASKENC_MODELS_URL`` or the visualpriors release."""
    url = os.environ.get(ENV_URL) or DEFAULT_BASE_URL
    return url if url.endswith("/") else url + "/"


def weights_url(task: str) -> str:
    return base_url() + published_filename(task)


def how_to_get(task: str, store: Path) -> str:
    """One sentence telling a user how to put ``task``'s weights into ``store``."""
    return (
        f"download {weights_url(task)} into {store}/ or run "
        f"'bids_taskenc-models fetch --tasks {canonical_task(task)} --dir {store}' on a machine with internet"
    )


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def candidates(task: str, store: Path) -> list[tuple[Path, str]]:
    """``(path, sha256-in-name)`` of every ``{task}_encoder-<64 hex>.pth`` in ``store``."""
    task = canonical_task(task)
    pattern = re.compile(rf"^{re.escape(task)}_encoder-([0-9a-f]{{64}})\.pth$")
    if not store.is_dir():
        return []
    found = []
    for p in sorted(store.iterdir()):
        m = pattern.match(p.name)
        if m and p.is_file():
            found.append((p, m.group(1)))
    return found


def _stamp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.verified")


def _write_stamp(path: Path, token: str) -> None:
    """Record that ``path`` was verified (``token``: size, mtime, sha256); a read-only store keeps none."""
    try:
        with atomic_path(_stamp_path(path), suffix=".part") as tmp:
            tmp.write_text(token + "\n")
    except OSError:
        pass  # read-only store (container image): verification just repeats next time


def verify_file(path: Path, expected: str, *, force: bool = False) -> None:
    """Raise FeatureError when ``path``'s sha256 differs from ``expected``.

    Without ``force``, a stamp written after an earlier successful check (same
    size and mtime) stands in for re-hashing.
    """
    st = path.stat()
    token = f"{st.st_size} {st.st_mtime_ns} {expected}"
    stamp = _stamp_path(path)
    if not force:
        try:
            if stamp.read_text().strip() == token:
                return
        except OSError:
            pass
    actual = sha256_file(path)
    if actual != expected:
        raise FeatureError(
            f"{path}: corrupt weights file: its sha256 is {actual}, but its name says {expected}. "
            f"Delete it and fetch it again ('bids_taskenc-models fetch --dir {path.parent}')"
        )
    _write_stamp(path, token)


def locate(task: str, store: str | Path | None = None, *, verify: bool = True) -> WeightsFile | None:
    """The single encoder file for ``task`` in the store, verified; None when absent.

    Raises FeatureError when the file is corrupt or several files for the task
    exist; logs a warning when its hash is not the published one.
    """
    task = canonical_task(task)
    store = weights_dir(store)
    found = candidates(task, store)
    if not found:
        return None
    if len(found) > 1:
        names = ", ".join(p.name for p, _ in found)
        raise FeatureError(f"{store}: several weights files for task {task!r} ({names}); keep exactly one")
    path, digest = found[0]
    if verify:
        verify_file(path, digest)
    published = digest == ENCODER_SHA256[task]
    if not published:
        log.warning(
            "%s: custom weights for task %r (sha256 %s; the published file has %s); using them, "
            "and their hash goes into provenance",
            path,
            task,
            digest,
            ENCODER_SHA256[task],
        )
    return WeightsFile(task=task, path=path, sha256=digest, published=published)


def download(task: str, store: str | Path | None = None, *, progress: bool = True, timeout: float = 60.0) -> Path:
    """Download ``task``'s published encoder into the store; returns its path.

    pooch (:mod:`bids_taskenc.core.download`) streams it to a temporary file in the
    store, checks the sha256 against the published one, retries a failed
    download and moves the file into place only when it matches (a concurrent
    download of the same file is harmless: both write identical content).
    """
    from ..core.download import DownloadError, fetch

    task = canonical_task(task)
    store = weights_dir(store)
    url = weights_url(task)
    final = store / published_filename(task)
    try:
        fetch(url, ENCODER_SHA256[task], final, progress=progress, timeout=timeout)
    except DownloadError as exc:
        if exc.mismatch:
            raise FeatureError(
                f"{url}: downloaded file's sha256 is not the expected {ENCODER_SHA256[task]}; "
                "not installed (truncated download or wrong server)"
            ) from exc
        raise FeatureInputMissing(
            f"{final.name}: download from {url} failed ({exc}); {how_to_get(task, store)}"
        ) from exc
    st = final.stat()
    _write_stamp(final, f"{st.st_size} {st.st_mtime_ns} {ENCODER_SHA256[task]}")
    return final


def ensure_weights(
    task: str, store: str | Path | None = None, *, offline: bool = False, progress: bool = True
) -> WeightsFile:
    """The verified encoder file for ``task``, downloading it when missing (unless offline)."""
    task = canonical_task(task)
    store = weights_dir(store)
    found = locate(task, store)
    if found is not None:
        return found
    if offline:
        raise FeatureInputMissing(
            f"{store / published_filename(task)}: Taskonomy weights missing and --offline is set; "
            f"{how_to_get(task, store)}"
        )
    download(task, store, progress=progress)
    found = locate(task, store)
    assert found is not None
    return found
