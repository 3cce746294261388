"""Writers for the participant derivatives: statistic maps, masks, sidecars, dataset files."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import nibabel as nib
import numpy as np

from ..__about__ import __version__
from .atomic import write_image, write_json, write_text
from .intents import set_nifti_intent, sidecar_intent
from .naming import derivative_path, sidecar_path
from .statistics import description

#: stat entity -> suffix folder names etc. are all built by :func:`derivative_path`.
BIDSIGNORE = [
    "*_statmap.nii.gz",
    "*_statmap.json",
    "*_statmap.func.gii",
    "*_scores.tsv",
    "*_scores.json",
    "*_stimuli.tsv",
    "*_weights.npz",
    "*_weights.json",
    "*_matrix.tsv",
    "*_matrix.json",
    "*_dendrogram.*",
    "*_edges.*",
    # folders: no trailing slash, which the validator (3.x) does not match against the folder itself
    "group",
    "logs",
    "figures",
    "features",
    "*.html",
]


def write_statmap(root: Path, img: nib.Nifti1Image, sidecar: dict, **entities) -> Path:
    """Write one ``..._stat-<stat>_statmap.nii.gz`` (its header's intent says what it holds) and its JSON sidecar."""
    path = derivative_path(root, suffix="statmap", extension=".nii.gz", **entities)
    stat = entities.get("stat")
    meta = {"Statistic": stat, "Description": description(stat, sidecar), **sidecar}
    set_nifti_intent(img, sidecar_intent(str(stat), meta))
    write_image(path, img)
    write_json(sidecar_path(path), meta)
    return path


def write_mask(root: Path, img: nib.Nifti1Image, sidecar: dict, **entities) -> Path:
    """Write the analysis mask ``..._desc-brain_mask.nii.gz`` and its sidecar."""
    path = derivative_path(root, suffix="mask", extension=".nii.gz", desc="brain", **entities)
    img = nib.Nifti1Image(np.asarray(img.dataobj, dtype=np.uint8), img.affine)
    img.header.set_xyzt_units("mm")
    write_image(path, img)
    write_json(sidecar_path(path), {"Type": "Brain", **sidecar})
    return path


def read_dataset_links(root: Path) -> dict[str, Path]:
    """The local entries of an existing output's ``DatasetLinks`` (``{}`` when none).

    ``file:`` URIs, and paths without a scheme, which BIDS resolves relative to
    the dataset root (``../..`` for the raw dataset around ``derivatives/x``).
    """
    from urllib.parse import unquote, urlparse

    path = Path(root) / "dataset_description.json"
    try:
        links = json.loads(path.read_text()).get("DatasetLinks", {}) if path.exists() else {}
    except json.JSONDecodeError:
        return {}
    out = {}
    for name, uri in links.items():
        if not isinstance(uri, str):
            continue
        if uri.startswith("file:"):
            out[name] = Path(unquote(urlparse(uri).path))
        elif not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", uri):  # no scheme: relative to the dataset root
            out[name] = (Path(root) / unquote(uri)).resolve()
    return out


def link_uri(root: Path, folder: Path, source_dir: Path) -> str:
    """How ``DatasetLinks`` records ``folder`` for the output ``root``.

    When the output lives inside the input dataset (``<bids>/derivatives/x``,
    as BIDS-Apps recommend) a folder inside that dataset is written as a path
    relative to ``root`` without a scheme (``../..``, ``../fmriprep``): the BIDS
    specification resolves a scheme-less ``DatasetLinks`` entry against the
    dataset root, so the links stay true when the whole dataset moves. Anything
    else is an absolute ``file:`` URI (a relative path would break as soon as
    the output or the input moved alone).
    """
    root, folder, source = Path(root).resolve(), Path(folder).resolve(), Path(source_dir).resolve()
    if root.is_relative_to(source) and folder.is_relative_to(source):
        return Path(os.path.relpath(folder, root)).as_posix()
    return folder.as_uri()


def dataset_links(source_dir: Path, others: list[Path], existing: dict[str, Path] | None = None) -> dict[str, Path]:
    """Names for the datasets our inputs come from.

    ``raw`` for the BIDS folder, then each other folder (preprocessed
    derivatives, betas) under its own lower-case alphanumeric name. A folder
    already named in ``existing`` (an earlier run's ``DatasetLinks``) keeps
    that name, and a new folder never takes a name ``existing`` gives another
    folder, so every sidecar's ``bids:`` URIs stay true.
    """
    existing = dict(existing or {})
    links: dict[str, Path] = {}
    for base, folder in [("raw", Path(source_dir))] + [(None, Path(f)) for f in others]:
        folder = folder.resolve()
        if folder in links.values():
            continue
        known = [n for n, f in existing.items() if f == folder]
        if known:
            links[known[0]] = folder
            continue
        base = base or re.sub(r"[^a-z0-9]", "", folder.name.lower()) or "inputs"
        name, i = base, 2
        while name in links or name in existing:
            name, i = f"{base}{i}", i + 1
        links[name] = folder
    return links


def bids_uri(path: str | Path, links: dict[str, Path]) -> str:
    """``bids:<dataset>:<relative path>`` for a file inside a linked dataset (the innermost one), else its path.

    Sidecars name their inputs this way so they stay true when the data move
    (another cluster, a container's mount point); ``DatasetLinks`` in
    ``dataset_description.json`` says where each dataset was.
    """
    path = Path(path).resolve()
    best = None
    for name, root in links.items():
        if path.is_relative_to(root) and (best is None or len(root.parts) > len(links[best].parts)):
            best = name
    return f"bids:{best}:{path.relative_to(links[best]).as_posix()}" if best else str(path)


def write_dataset_description(
    root: Path, *, source_dir: Path, container: dict | None = None, links: dict[str, Path] | None = None
) -> Path:
    """``dataset_description.json`` of the output (DatasetType derivative), plus ``.bidsignore``.

    An existing description is kept when it was written by the same version,
    except that ``links`` (see :func:`dataset_links`) are added to its
    ``DatasetLinks``: participants run as separate jobs all record theirs.
    """
    path = Path(root) / "dataset_description.json"
    generated: dict[str, object] = {"Name": "bids_taskenc", "Version": __version__}
    if container:
        generated["Container"] = container
    links = links or {}
    desc: dict[str, object] = {
        "Name": "bids_taskenc: voxelwise encoding models of vision-task representations",
        "BIDSVersion": "1.8.0",
        "DatasetType": "derivative",
        "GeneratedBy": [generated],
        "SourceDatasets": [
            {
                "URL": "bids:raw:"
                if links.get("raw") is not None and Path(links["raw"]).resolve() == Path(source_dir).resolve()
                else Path(source_dir).resolve().as_uri()
            }
        ],
        "HowToAcknowledge": "Cite Wang, Tarr & Wehbe (2019) Neural Taskonomy; see logs/CITATION.md",
    }
    new_links = {name: link_uri(root, folder, source_dir) for name, folder in links.items()}
    if new_links:
        desc["DatasetLinks"] = new_links
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except json.JSONDecodeError:
            old = {}
        if old.get("GeneratedBy", [{}])[0].get("Version") == __version__:
            merged = {**new_links, **old.get("DatasetLinks", {})}
            if merged == old.get("DatasetLinks", {}):
                return path
            desc = {**old, "DatasetLinks": merged}
    write_json(path, desc)
    ignore = Path(root) / ".bidsignore"
    existing = ignore.read_text().split() if ignore.exists() else []
    write_text(ignore, "\n".join(dict.fromkeys(existing + BIDSIGNORE)) + "\n")
    return path
