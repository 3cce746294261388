"""Which folders and files this app wrote: only those may it replace (docs/output-safety.md).

A derivatives folder of ours has a ``dataset_description.json`` whose ``GeneratedBy`` names ``bids_taskenc``; a
participant folder ``sub-<label>/`` of ours holds sidecars whose ``SoftwareVersions`` name ``bids_taskenc`` (every
map's sidecar has, since the first release, so the outputs of earlier versions are recognised too). An empty
participant folder holds nothing to lose and counts as ours.
"""

from __future__ import annotations

import json
from pathlib import Path

#: ``GeneratedBy[].Name`` and the ``SoftwareVersions`` key of this app.
GENERATOR = "bids_taskenc"


def read_description(root: Path) -> dict | None:
    """``root/dataset_description.json`` as a dict; None when there is none; ``{}`` when unreadable."""
    path = Path(root) / "dataset_description.json"
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def description_owner(root: Path) -> str | None:
    """Who wrote ``root``'s ``dataset_description.json``: None if absent or ours, else a short description."""
    desc = read_description(root)
    if desc is None:
        return None
    generated = desc.get("GeneratedBy")
    names = [g.get("Name") for g in generated if isinstance(g, dict)] if isinstance(generated, list) else []
    if GENERATOR in names:
        return None
    if names:
        return f"GeneratedBy {', '.join(map(str, names))}"
    return f"DatasetType {desc.get('DatasetType', 'raw')!s}, not written by {GENERATOR}"


def _ours(sidecar: Path) -> bool:
    try:
        data = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        return False
    versions = data.get("SoftwareVersions") if isinstance(data, dict) else None
    return isinstance(versions, dict) and GENERATOR in versions


def participant_folder_is_ours(folder: Path) -> bool:
    """True when ``folder`` (a ``sub-<label>/``) is missing, empty, or holds a sidecar of this app."""
    folder = Path(folder)
    if not folder.exists():
        return True
    if not folder.is_dir():
        return False
    files = [p for p in folder.rglob("*") if p.is_file() or p.is_symlink()]
    if not files:
        return True
    return any(_ours(p) for p in files if p.suffix == ".json" and p.is_file() and not p.is_symlink())
