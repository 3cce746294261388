"""Voxelwise group maps in a shared template space.

Only when every participant's maps sit on one grid (identical shape and
affine) of a template space (not T1w/native, see
:data:`bids_taskenc.group.inputs.NATIVE_SPACES`). Computed over the voxels
analysed in *every* participant (intersection of brain masks):

* ``meanr``: Fisher-z average of r, back-transformed: ``tanh(mean(arctanh(r)))``
  with r clipped to ``|r| <= 1 - 1e-7``;
* ``t``, ``p``: one-sample t-test of the z values across participants against 0,
  one-sided (greater: is prediction above chance), needs >= 2 participants;
* ``q``: Benjamini-Hochberg FDR of ``p`` over the group mask (:func:`bids_taskenc.core.fdr.fdr_bh`).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from bids_taskenc.core.fdr import fdr_bh
from bids_taskenc.core.masks import to_volume
from bids_taskenc.group.inputs import NATIVE_SPACES, ParticipantMaps

_EPS = 1e-7


def shared_grid(maps: list[ParticipantMaps]) -> tuple[bool, str]:
    """Whether group maps can be made; the reason when not."""
    spaces = {m.space for m in maps}
    if len(spaces) != 1:
        return False, f"participants are in different spaces ({', '.join(sorted(spaces))})"
    space = next(iter(spaces))
    if space in NATIVE_SPACES:
        return False, f"space {space} is participant-specific"
    if len(maps) < 2:
        return False, "fewer than two participants"
    first = maps[0]
    for m in maps[1:]:
        if m.mask.shape != first.mask.shape or not np.allclose(m.affine, first.affine, atol=1e-4):
            return False, f"sub-{m.participant} is not on the same grid as sub-{first.participant} in space {space}"
    return True, ""


def fisher_mean(r: np.ndarray) -> np.ndarray:
    """``(P, V)`` r -> ``(V,)`` Fisher-z mean, back-transformed to r."""
    z = np.arctanh(np.clip(r, -1 + _EPS, 1 - _EPS))
    return np.tanh(z.mean(axis=0))


def one_sample(r: np.ndarray, fdr_level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(P, V)`` r -> t, one-sided p and BH q, each ``(V,)``.

    ``fdr_level`` is the group's one level (:func:`~bids_taskenc.group.inputs.resolve_fdr_level`);
    q itself does not depend on it.

    Voxels with zero variance across participants are untestable: t = 0, p = 1.
    """
    z = np.arctanh(np.clip(r, -1 + _EPS, 1 - _EPS))
    n = z.shape[0]
    mean = z.mean(axis=0)
    sd = z.std(axis=0, ddof=1) if n > 1 else np.zeros_like(mean)
    testable = sd > 1e-12 * np.maximum(1.0, np.abs(mean))
    t = np.zeros_like(mean)
    t[testable] = mean[testable] / (sd[testable] / np.sqrt(n))
    p = np.ones_like(mean)
    p[testable] = stats.t.sf(t[testable], df=n - 1)
    q = fdr_bh(p, fdr_level)
    return t, p, q


def group_maps(maps: list[ParticipantMaps], fdr_level: float) -> tuple[np.ndarray, dict[str, dict[str, np.ndarray]]]:
    """Group statistics of every feature label.

    Returns
    -------
    mask : ndarray
        ``(X, Y, Z)`` bool intersection of the participants' brain masks.
    stats_by_label : dict
        ``stats_by_label[label][stat]`` = ``(X, Y, Z)`` float32 volume for stat in
        ``meanr, t, p, q`` (0 outside the mask; p and q 1 outside).
    """
    mask = np.logical_and.reduce([m.mask for m in maps])
    out: dict[str, dict[str, np.ndarray]] = {}
    # column positions of the shared voxels in each participant's vectors
    columns = []
    for m in maps:
        index = np.full(m.mask.shape, -1, dtype=np.int64)
        index[m.mask] = np.arange(m.n_voxels)
        columns.append(index[mask])
    for f, label in enumerate(maps[0].labels):
        r = np.stack([m.r[f, cols] for m, cols in zip(maps, columns)])  # (P, V)
        mean = fisher_mean(r)
        t, p, q = one_sample(r, fdr_level)
        out[label] = {
            name: to_volume(values, mask, fill)
            for name, values, fill in (("meanr", mean, 0.0), ("t", t, 0.0), ("p", p, 1.0), ("q", q, 1.0))
        }
    return mask, out
