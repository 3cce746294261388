"""A rerun adds and replaces what it computes and keeps the rest of a participant's finished work.

Rerunning a participant with other ``--feature-spaces`` replaced its whole ``sub-<label>/`` folder: the maps of
every earlier space were lost (hours of GPU time at BOLD5000 scale). Now the new participant folder is staged as
the old one plus the new outputs and swapped in whole (docs/output-safety.md):

* the maps of a space this run computes replace that space's earlier files (all of them, so a surface map the new
  run no longer writes does not outlive its volume map); the maps of other spaces are kept;
* what every space shares (brain mask, split, noise ceiling) is written anew; the ROI table keeps the earlier
  spaces' rows; outputs that combine spaces (contrasts, partitionings, the group's matrices) are kept unless a
  space they were computed from was replaced by other numbers, then dropped with a warning;
* other tasks' outputs are kept.

Maps of different spaces may only sit side by side when they share what every space of a participant shares
(:func:`shared_settings`: the responses, the split, the seed, the mask, the FDR level of the noise ceiling and
ROI table). A rerun with other shared settings stops before any work, naming each setting, unless the user asks
to replace everything (``--replace-outputs``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.images import load_volume
from ..errors import UsageError
from ..outputs.atomic import write_json, write_tsv
from ..outputs.naming import PARTITIONING_ROI_DESC, parse_derivative_name, sidecar_path
from ..outputs.shared import SHARED_KEY, differing, recorded_shared_settings
from .settings import ParticipantSettings

__all__ = ["SHARED_KEY", "check_rerun", "check_same_data", "merge_previous", "recorded_shared_settings"]

log = logging.getLogger(__name__)


def _file_sha256(path) -> str | None:
    if path is None:
        return None
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return f"unreadable {path}"


def shared_settings(settings: ParticipantSettings, space: str) -> dict:
    """What every feature space of one participant's task shares, by option: the record kept in every sidecar.

    Files enter by content (the mask's and the filter file's sha256), so a moved dataset compares equal.
    """
    inputs, responses, fit = settings.inputs, settings.responses, settings.fit
    shared: dict[str, Any] = {
        "--space": space,
        "--session-label": sorted(inputs.sessions),
        "--bids-filter-file": _file_sha256(inputs.bids_filter_file),
        "--responses": responses.model,
        "--confounds": list(responses.confounds),
        "--mask": _file_sha256(responses.mask),
        "--resample-mask": bool(responses.resample_mask) if responses.mask is not None else False,
        "--repeats": responses.repeats,
        "--test-fraction": fit.test_fraction,
        "--test-split": fit.test_split,
        "--seed": fit.seed,
        "--fdr-alpha": fit.fdr_alpha,
        "--n-permutations": fit.n_permutations,
        "--p-sides": fit.p_sides,
    }
    if responses.model == "travg":
        shared["--response-trs"] = list(responses.response_trs)
        shared["--response-zscore"] = responses.response_zscore
    if responses.model == "lsa":
        shared.update(
            {
                "--hrf-model": responses.hrf_model,
                "--high-pass": responses.high_pass,
                "--lsa-zscore": responses.lsa_zscore,
            }
        )
    if responses.model == "betas":
        if responses.betas_dir is None:  # ResponseSettings refuses this
            raise UsageError("--betas-dir must be given when the responses are betas")
        shared["--betas-dir"] = str(Path(responses.betas_dir).resolve())
    return shared


def earlier_maps(folder: Path, task: str) -> dict[str, Path]:
    """Feature label -> sidecar of its volumetric r map, for ``task`` in the participant folder ``folder``."""
    found = {}
    for path in sorted(Path(folder).glob(f"func/*_task-{task}_*_stat-r_statmap.json")):
        try:
            ents = parse_derivative_name(path.name)
        except ValueError:
            continue
        if "hemi" not in ents and "desc" in ents and ents.get("task") == task:
            found[ents["desc"]] = path
    return found


def check_rerun(folder: Path, subject: str, tasks: list[str], new: dict, labels: set[str]) -> None:
    """Refuse (exit 64) adding maps to ``folder`` beside earlier maps made with other shared settings.

    ``new`` is this run's :func:`shared_settings`, ``labels`` the feature labels it computes. When this run
    recomputes every earlier space of a task, nothing earlier is kept beside the new maps and other settings are
    allowed (the user asked for those spaces anew).
    """
    for task in tasks:
        earlier = earlier_maps(folder, task)
        kept = sorted(set(earlier) - set(labels))
        if not kept:
            continue
        for side in earlier.values():
            try:
                old = recorded_shared_settings(json.loads(side.read_text()))
            except (OSError, ValueError):
                old = {}
            diffs = differing(old, new)
            if diffs:
                raise UsageError(
                    f"sub-{subject} task-{task}: {side} was made with other shared settings than this run: "
                    f"{'; '.join(diffs)}. The maps of {', '.join(kept)} would be kept beside this run's, and the "
                    "maps of one participant must share these settings: run with the same values to add feature "
                    "spaces, or give --replace-outputs to replace every output of the participant"
                )


def check_same_data(old: Path, staged: Path, computed: dict[str, set[str]]) -> None:
    """Refuse to keep earlier maps whose split table or brain mask differs from this run's (the inputs changed)."""
    import numpy as np

    for task, labels in computed.items():
        if not set(earlier_maps(old, task)) - labels:
            continue
        pairs = [(p, Path(staged) / p.relative_to(old)) for p in sorted(Path(old).glob(f"func/*_task-{task}_*"))]
        for before, now in pairs:
            name = before.name
            if name.endswith("_desc-split_stimuli.tsv") and now.exists():
                same = before.read_bytes() == now.read_bytes()
            elif name.endswith("_desc-brain_mask.nii.gz") and now.exists():
                same = np.array_equal(np.asarray(load_volume(before).dataobj), np.asarray(load_volume(now).dataobj))
            else:
                continue
            if not same:
                raise UsageError(
                    f"{before}: differs from this run's {now.name} although the shared settings are the same: the "
                    "inputs changed since the earlier maps were made; rerun every feature space of the "
                    "participant, or give --replace-outputs to replace its outputs"
                )


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _merge_roi_table(old_table: Path, staged_table: Path, recomputed: set[str]) -> None:
    """The earlier rows of spaces not recomputed, added to the staged ROI table (or alone, when there is none)."""
    old = pd.read_csv(old_table, sep="\t")
    kept = old[~old["feature_space"].astype(str).isin(recomputed)] if "feature_space" in old else old.iloc[:0]
    if staged_table.exists():
        new = pd.read_csv(staged_table, sep="\t")
        merged = pd.concat([kept, new], ignore_index=True)
        # rows in the earlier table's order of spaces, new spaces after: an unchanged rerun leaves the table as it was
        order = list(dict.fromkeys([*old["feature_space"].astype(str), *new["feature_space"].astype(str)]))
        rank = merged["feature_space"].astype(str).map({label: i for i, label in enumerate(order)})
        merged = merged.iloc[rank.argsort(kind="stable")].reset_index(drop=True)
        meta = json.loads(sidecar_path(staged_table).read_text())
        try:
            old_meta = json.loads(sidecar_path(old_table).read_text())
        except (OSError, ValueError):
            old_meta = {}
        meta["Columns"] = {**old_meta.get("Columns", {}), **meta.get("Columns", {})}
    elif len(kept):
        merged = kept
        meta = json.loads(sidecar_path(old_table).read_text()) if sidecar_path(old_table).exists() else {}
    else:
        return
    write_tsv(staged_table, merged)
    write_json(sidecar_path(staged_table), meta)


def _merge_partition_table(old_table: Path, staged_table: Path) -> None:
    """The partitionings' ROI table: the earlier rows of partitionings whose maps were kept, and this run's."""
    old = pd.read_csv(old_table, sep="\t")
    if "partitioning" not in old:
        return
    new = pd.read_csv(staged_table, sep="\t") if staged_table.exists() else None
    func = staged_table.parent
    done = set() if new is None else set(new["partitioning"].astype(str))
    kept_names = {
        p for p in old["partitioning"].astype(str).unique() if p not in done and any(func.glob(f"*_desc-{p}_*"))
    }
    kept = old[old["partitioning"].astype(str).isin(kept_names)]
    if not len(kept):
        return
    merged = kept if new is None else pd.concat([kept, new], ignore_index=True)
    side = sidecar_path(staged_table) if new is not None else sidecar_path(old_table)
    meta = json.loads(side.read_text()) if side.exists() else {}
    write_tsv(staged_table, merged)
    write_json(sidecar_path(staged_table), meta)


def _same_maps(old: Path, staged: Path, task: str, label: str) -> bool:
    """True when every earlier volumetric map of ``label`` has an equal map (values, NaNs alike) in ``staged``:
    the space was recomputed to the same numbers, so outputs combining it with others are still right."""
    import numpy as np

    for path in sorted(Path(old).glob(f"func/*_task-{task}_*_desc-{label}_*.nii.gz")):
        new = Path(staged) / path.relative_to(old)
        if not new.exists():
            return False
        a, b = np.asarray(load_volume(path).dataobj), np.asarray(load_volume(new).dataobj)
        if a.shape != b.shape or not np.array_equal(a, b, equal_nan=True):
            return False
    return True


def merge_previous(old: Path, staged: Path, computed: dict[str, set[str]]) -> list[str]:
    """Add to the staged participant folder ``staged`` what the earlier folder ``old`` holds and this run keeps.

    ``computed`` maps each task this run wrote to the feature labels it computed. Files are hard-linked (copied
    where links fail). Returns the names of earlier combined outputs dropped because a space they used was replaced
    by different numbers (a space recomputed to equal maps leaves them valid, and kept).
    """
    old, staged = Path(old), Path(staged)
    dropped = []
    partition_tables = []
    for task, labels in computed.items():
        earlier = set(earlier_maps(old, task))
        replaced = {label for label in earlier & labels if not _same_maps(old, staged, task, label)}
        for path in sorted(p for p in old.rglob("*") if p.is_file()):
            rel = path.relative_to(old)
            target = staged / rel
            try:
                ents = parse_derivative_name(path.name)
            except ValueError:
                ents = {}
            desc = ents.get("desc")
            if ents.get("task") != task or target.exists() and desc not in ("roi", PARTITIONING_ROI_DESC):
                continue
            if desc == "roi" and ents.get("suffix") == "scores":
                if path.suffix == ".tsv":
                    _merge_roi_table(path, target, labels)
                continue
            if desc == PARTITIONING_ROI_DESC and ents.get("suffix") == "scores":
                partition_tables.append((path, target))
                continue
            if desc in labels:
                continue  # a space of this run: its new files replace all of its earlier ones
            if desc in earlier or not replaced:
                _link_or_copy(path, target)
            else:
                dropped.append(path.name)
    for path, target in partition_tables:
        if path.suffix == ".tsv":
            _merge_partition_table(path, target)
    for path in sorted(p for p in old.rglob("*") if p.is_file()):  # other tasks and files of no task: kept
        target = staged / path.relative_to(old)
        try:
            file_task = parse_derivative_name(path.name).get("task")
        except ValueError:
            file_task = None
        if file_task not in computed and not target.exists():
            _link_or_copy(path, target)
    return dropped


def merge_saved_features(old: Path, staged: Path) -> None:
    """``features/sub-X/task-T/<label>/`` folders of the earlier run that this run did not save again."""
    for folder in sorted(p for p in Path(old).glob("*/*") if p.is_dir()):
        target = Path(staged) / folder.relative_to(old)
        if not target.exists():
            for path in (p for p in folder.rglob("*") if p.is_file()):
                _link_or_copy(path, target / path.relative_to(folder))
