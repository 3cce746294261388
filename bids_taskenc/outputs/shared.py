"""The settings every feature space of a participant's task shares, as its sidecars record them.

The participant level writes them (``SharedSettings`` in every sidecar of a task; :mod:`bids_taskenc.workflow.rerun`
builds them from the run's settings) and compares them before a rerun keeps earlier maps; the group level compares
them before it combines maps (:mod:`bids_taskenc.group.inputs`). Maps written before the record existed are read
from the blocks their sidecars always had (``Responses``, ``Split``, ``FDRLevel``, ``NPermutations``, ``Space``).
"""

from __future__ import annotations

#: Key of the shared settings in every sidecar of a task.
SHARED_KEY = "SharedSettings"


def recorded_shared_settings(sidecar: dict) -> dict:
    """The shared settings a map's sidecar records; for maps of versions before the record, what its blocks say."""
    if isinstance(sidecar.get(SHARED_KEY), dict):
        return sidecar[SHARED_KEY]
    responses = sidecar.get("Responses") or {}
    split = sidecar.get("Split") or {}
    legacy = {
        "--space": sidecar.get("Space"),
        "--responses": responses.get("ResponseModel"),
        "--confounds": responses.get("Confounds"),
        "--test-fraction": split.get("TestFraction"),
        "--seed": split.get("Seed"),
        "--fdr-alpha": sidecar.get("FDRLevel"),
        "--n-permutations": sidecar.get("NPermutations"),
    }
    if responses.get("ResponseModel") == "travg":
        legacy["--response-trs"] = responses.get("ResponseTRs")
    return {k: v for k, v in legacy.items() if v is not None}


def _same(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(float(a) - float(b)) <= 1e-12 * max(1.0, abs(float(a)))
    return a == b


def shown(value) -> str:
    if isinstance(value, list):
        return " ".join(map(str, value)) or "none"
    if value is None:
        return "none"
    if isinstance(value, str) and len(value) == 64:
        return f"file sha256 {value[:12]}…"
    return str(value)


def differing_keys(old: dict, new: dict) -> list[str]:
    """The settings both records hold with different values, in ``new``'s order."""
    return [key for key in new if key in old and not _same(old[key], new[key])]


def differing(old: dict, new: dict) -> list[str]:
    """``'--seed 0 (this run: 1)'`` for each setting both records hold with different values."""
    return [f"{key} {shown(old[key])} (this run: {shown(new[key])})" for key in differing_keys(old, new)]
