"""Taskonomy transfer affinities: the bundled tables, download, verify, cache, load, rename.

Taskonomy (Zamir et al., CVPR 2018; StanfordVL/taskonomy, MIT license)
published its transfer affinities as Python-2 pickles of a dict
``"{source}__{target}" -> float`` in ``results/affinities/`` (higher-order
entries join several sources with ``__``; only first-order entries are used).
The package ships their first-order entries as text tables (``data/``, one
per training-set size, with Taskonomy's licence; :func:`bundled_affinities`),
so the group comparison works offline and on every clone. The pickles can
still be downloaded (:func:`fetch_affinities`: pooch, checked against
:data:`AFFINITIES_SHA256`) and read by :func:`load_affinities`.

The 2018 task names (``rgb2sfnorm``, ``class_1000``, ...) are mapped to the
model-bank names used by the feature registry (``normal``, ``class_object``,
..., :data:`TASKONOMY_NAMES`) and from there to BIDS labels
(``depth_zbuffer`` -> ``depthzbuffer``), the ``desc`` of participant outputs.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bids_taskenc.outputs.naming import bids_label

#: Raw URL of the first-order + higher-order affinities (default training-set size).
#: Layout checked against the repository: ``results/affinities/`` sits at its root.
AFFINITIES_URL = "https://raw.githubusercontent.com/StanfordVL/taskonomy/master/results/affinities/all_affinities.pkl"

#: sha256 of ``all_affinities.pkl`` (computed from the reference copy).
AFFINITIES_SHA256 = "6b2d42a7281fe4eac2f5f32499f12c3da63292d4a5d8f04bf1b8b97d9687260c"

#: The first-order tables shipped with the package: ``name -> file`` in :data:`BUNDLED_DIR` (wide TSV, one row per
#: target, one column per source, 2018 task names; the values of ``all_affinities{,_1k,_16k}.pkl`` exactly).
BUNDLED_DIR = Path(__file__).parent / "data"
BUNDLED_TABLES = {
    "default": "taskonomy_affinities_default.tsv",
    "1k": "taskonomy_affinities_1k.tsv",
    "16k": "taskonomy_affinities_16k.tsv",
}
#: The pickle each bundled table was taken from (its name in ``results/affinities/``).
BUNDLED_SOURCES = {"default": "all_affinities.pkl", "1k": "all_affinities_1k.pkl", "16k": "all_affinities_16k.pkl"}

#: Taskonomy 2018 task names -> model-bank (visualpriors) names.
TASKONOMY_NAMES: dict[str, str] = {
    "autoencoder": "autoencoding",
    "class_1000": "class_object",
    "class_places": "class_scene",
    "class_selected": "class_scene",
    "colorization": "colorization",
    "curvature": "curvature",
    "denoise": "denoising",
    "edge2d": "edge_texture",
    "edge3d": "edge_occlusion",
    "ego_motion": "egomotion",
    "fix_pose": "fixated_pose",
    "impainting_whole": "inpainting",
    "jigsaw": "jigsaw",
    "keypoint2d": "keypoints2d",
    "keypoint3d": "keypoints3d",
    "non_fixated_pose": "nonfixated_pose",
    "point_match": "point_matching",
    "reshade": "reshading",
    "rgb2depth": "depth_zbuffer",
    "rgb2mist": "depth_euclidean",
    "rgb2sfnorm": "normal",
    "room_layout": "room_layout",
    "segment25d": "segment_unsup25d",
    "segment2d": "segment_unsup2d",
    "segmentsemantic_rb": "segment_semantic",
    "vanishing_point_well_defined": "vanishing_point",
}

#: When two 2018 names map to one bank name, the first present wins.
PREFERRED_SOURCE = {"class_scene": ("class_places", "class_selected")}

#: Reference "sources" that are not tasks.
NON_TASKS = frozenset({"self", "random"})


class ReferenceDataError(RuntimeError):
    """The reference affinities cannot be downloaded, verified or read."""


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/bids_taskenc/reference`` (``~/.cache/...`` when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "bids_taskenc" / "reference"


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def bundled_affinities(version: str = "default") -> Path:
    """Path of a first-order affinity table shipped with the package (``version``: a key of :data:`BUNDLED_TABLES`).

    Raises
    ------
    ReferenceDataError
        Unknown ``version``, or the file is missing from the installation.
    """
    if version not in BUNDLED_TABLES:
        raise ReferenceDataError(f"no bundled Taskonomy affinities {version!r} (one of {sorted(BUNDLED_TABLES)})")
    path = BUNDLED_DIR / BUNDLED_TABLES[version]
    if not path.is_file():
        raise ReferenceDataError(f"the bundled Taskonomy affinities {path} are missing from this installation")
    return path


def bundled_provenance(version: str = "default") -> dict:
    """What the group sidecars record about a bundled table: where it came from, its licence, its sha256."""
    path = bundled_affinities(version)
    return {
        "Source": f"bids_taskenc package data {path.name}",
        "Origin": (
            "first-order entries of StanfordVL/taskonomy results/affinities/"
            f"{BUNDLED_SOURCES[version]} (Zamir et al. 2018)"
        ),
        "License": "MIT (Copyright (c) 2017 Stanford Vision and Learning Group; LICENSE.taskonomy beside the table)",
        "sha256": sha256_of(path),
    }


def fetch_affinities(
    cache_dir: str | Path | None = None,
    *,
    url: str = AFFINITIES_URL,
    sha256: str = AFFINITIES_SHA256,
    offline: bool = False,
    timeout: float = 60.0,
) -> Path | None:
    """Path of the verified affinity pickle in the cache, downloading it if needed.

    A cached file with the wrong hash is deleted and fetched again. The
    download (pooch, :mod:`bids_taskenc.core.download`) goes to a temporary file
    beside the target, is retried when it fails, and is moved into place only
    when its hash matches.

    Returns
    -------
    Path or None
        None when ``offline`` and the cache does not hold a valid copy.

    Raises
    ------
    ReferenceDataError
        Download failure or hash mismatch (nothing is left in the cache).
    """
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = folder / url.rstrip("/").rsplit("/", 1)[-1]
    if target.exists():
        if sha256_of(target) == sha256:
            return target
        target.unlink()
    if offline:
        return None
    from bids_taskenc.core.download import DownloadError, fetch

    try:
        return fetch(url, sha256, target, timeout=timeout)
    except DownloadError as exc:
        if exc.mismatch:
            raise ReferenceDataError(f"sha256 mismatch for {url}: expected {sha256} ({exc})") from exc
        raise ReferenceDataError(f"cannot download {url}: {exc}") from exc


def _rename(name: str) -> str:
    return TASKONOMY_NAMES.get(name, name)


def _from_pairs(pairs: dict[tuple[str, str], float]) -> pd.DataFrame:
    """``{(source, target): value}`` in 2018 names -> targets x sources frame in bank names."""
    sources = sorted({s for s, _ in pairs if s not in NON_TASKS})
    targets = sorted({t for _, t in pairs if t not in NON_TASKS})
    raw = pd.DataFrame(np.nan, index=targets, columns=sources)
    for (s, t), v in pairs.items():
        if s in raw.columns and t in raw.index:
            raw.loc[t, s] = float(v)
    return _to_bank(raw)


def _pick(names: Sequence[str]) -> dict[str, str]:
    """2018 name -> bank name, keeping one 2018 name per bank name (see :data:`PREFERRED_SOURCE`)."""
    by_bank: dict[str, list[str]] = {}
    for n in names:
        by_bank.setdefault(_rename(n), []).append(n)
    keep = {}
    for bank, olds in by_bank.items():
        order = PREFERRED_SOURCE.get(bank, ())
        ranked = sorted(olds, key=lambda o: (order.index(o) if o in order else len(order), o))
        keep[ranked[0]] = bank
    return keep


def _to_bank(raw: pd.DataFrame) -> pd.DataFrame:
    rows, cols = _pick(list(raw.index)), _pick(list(raw.columns))
    out = raw.loc[list(rows), list(cols)].rename(index=rows, columns=cols)
    out.index.name, out.columns.name = "target", "source"
    return out.sort_index().sort_index(axis=1)


def load_affinities(path: str | Path) -> pd.DataFrame:
    """First-order transfer affinities, ``(n_targets, n_sources)``, model-bank names.

    Reads a Taskonomy pickle (``"{source}__{target}" -> float``), a wide CSV/TSV
    (column ``target`` then one column per source, as in the reference
    folder's ``first_order_affinity_*.csv``) or a long CSV/TSV with columns
    ``source``, ``target`` and ``affinity`` (or ``value``/``weight``). The
    ``self`` and ``random`` reference sources are dropped.

    Raises
    ------
    ReferenceDataError
        Unreadable file or no first-order entries.
    """
    path = Path(path)
    if not path.exists():
        raise ReferenceDataError(f"affinity file {path} does not exist")
    pairs: dict[tuple[str, str], float] = {}
    try:
        if path.suffix.lower() in (".pkl", ".pickle"):
            with open(path, "rb") as fh:
                data = pickle.load(fh, encoding="latin1")
            if not isinstance(data, dict):
                raise ReferenceDataError(f"{path}: expected a dict, got {type(data).__name__}")
            for key, value in data.items():
                key = key.decode("latin1") if isinstance(key, bytes) else str(key)
                parts = key.split("__")
                if len(parts) == 2:
                    pairs[(parts[0], parts[1])] = float(value)
        else:
            table = pd.read_csv(path, sep=None, engine="python")
            cols = {c.lower(): c for c in table.columns}
            value_col = next((cols[c] for c in ("affinity", "value", "weight") if c in cols), None)
            if "source" in cols and "target" in cols and value_col is not None:
                for s, t, v in table[[cols["source"], cols["target"], value_col]].itertuples(index=False):
                    pairs[(str(s), str(t))] = float(v)
            elif "target" in cols:
                wide = table.set_index(cols["target"])
                for t, row in wide.iterrows():
                    for s, v in row.items():
                        if pd.notna(v):
                            pairs[(str(s), str(t))] = float(v)
            else:
                raise ReferenceDataError(f"{path}: no 'target' column (wide) or source/target/affinity columns (long)")
    except ReferenceDataError:
        raise
    except Exception as exc:
        raise ReferenceDataError(f"cannot read affinities from {path}: {exc}") from exc
    if not pairs:
        raise ReferenceDataError(f"{path}: no first-order source__target affinities")
    return _from_pairs(pairs)


def label_affinities(affinities: pd.DataFrame) -> pd.DataFrame:
    """Rename a bank-name affinity frame to BIDS labels (``depth_zbuffer`` -> ``depthzbuffer``)."""
    out = affinities.rename(index=bids_label, columns=bids_label)
    out.index.name, out.columns.name = "target", "source"
    return out


def transfer_out_similarity(affinities: pd.DataFrame, tasks: Sequence[str], metric: str = "cosine") -> pd.DataFrame:
    """Similarity of tasks' transfer-out vectors (Taskonomy's task-similarity tree).

    Taskonomy clusters tasks by their transfer-out pattern: task ``s`` is
    described by its affinities as a source to every target. Raw affinities
    differ in scale from one target to the next, so each target's row is first
    divided by its largest affinity over all (real) sources; a vector then has
    one component per target that has an affinity from every task in ``tasks``.

    Parameters
    ----------
    affinities : DataFrame
        ``(n_targets, n_sources)`` with labels matching ``tasks``.
    tasks : sequence of str
        ``F`` source tasks to compare (all must be columns).
    metric : {'cosine', 'correlation'}

    Returns
    -------
    DataFrame
        ``(F, F)`` similarity, index and columns ``tasks``.
    """
    tasks = list(tasks)
    missing = [t for t in tasks if t not in affinities.columns]
    if missing:
        raise ValueError(f"tasks without transfer-out affinities: {missing}")
    scale = affinities.abs().max(axis=1).replace(0, np.nan)
    normed = affinities.div(scale, axis=0)
    vectors = normed[tasks].dropna(axis=0, how="any").to_numpy(dtype=float).T  # (F, n_targets)
    if vectors.shape[1] < 2:
        raise ValueError("fewer than two targets with affinities from every task")
    if metric == "correlation":
        vectors = vectors - vectors.mean(axis=1, keepdims=True)
    elif metric != "cosine":
        raise ValueError(f"unknown metric {metric!r}")
    norm = np.linalg.norm(vectors, axis=1)
    norm[norm == 0] = 1.0
    unit = vectors / norm[:, None]
    sim = np.clip(unit @ unit.T, -1.0, 1.0)
    np.fill_diagonal(sim, 1.0)
    return pd.DataFrame(sim, index=tasks, columns=tasks)
