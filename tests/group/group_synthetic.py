"""Synthetic participant outputs with planted task clusters, for the group tests.

Tasks in one cluster share a block of voxels where their r is high and q is
small; elsewhere r is small noise with q near 1. The thresholded cosine
similarity is therefore high within a cluster and near 0 between clusters.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from bids_taskenc.outputs.atomic import write_image, write_json
from bids_taskenc.outputs.naming import derivative_path, sidecar_path

#: cluster -> {BIDS label: (registry name, Taskonomy 2018 name)}
CLUSTERS = {
    "2D": {
        "edgetexture": ("taskonomy:edge_texture", "edge2d"),
        "keypoints2d": ("taskonomy:keypoints2d", "keypoint2d"),
        "segmentunsup2d": ("taskonomy:segment_unsup2d", "segment2d"),
        "autoencoding": ("taskonomy:autoencoding", "autoencoder"),
    },
    "3D": {
        "depthzbuffer": ("taskonomy:depth_zbuffer", "rgb2depth"),
        "normal": ("taskonomy:normal", "rgb2sfnorm"),
        "reshading": ("taskonomy:reshading", "reshade"),
        "keypoints3d": ("taskonomy:keypoints3d", "keypoint3d"),
        "edgeocclusion": ("taskonomy:edge_occlusion", "edge3d"),
    },
    "semantic": {
        "classobject": ("taskonomy:class_object", "class_1000"),
        "classscene": ("taskonomy:class_scene", "class_places"),
        "segmentsemantic": ("taskonomy:segment_semantic", "segmentsemantic_rb"),
    },
}
LABELS = sorted(label for members in CLUSTERS.values() for label in members)
CLUSTER_OF = {label: c for c, members in CLUSTERS.items() for label in members}
REGISTRY = {label: reg for members in CLUSTERS.values() for label, (reg, _) in members.items()}
OLD_NAME = {label: old for members in CLUSTERS.values() for label, (_, old) in members.items()}
TASK = "5000scenes"
SHAPE = (10, 10, 10)
REFERENCE_DIR = (Path(__file__).parents[2] / ".." / "shared" / "reference" / "taskonomy").resolve()


def write_participant(
    root: Path,
    participant: str,
    *,
    task: str = TASK,
    space: str = "T1w",
    labels=LABELS,
    seed: int = 0,
    fdr_level: float = 0.05,
    affine=None,
    write_q: bool = True,
    write_mask: bool = True,
) -> dict[str, np.ndarray]:
    """Write one participant's r/q maps, sidecars and brain mask; return the r volumes."""
    rng = np.random.default_rng(seed)
    affine = np.diag([2.0, 2.0, 2.0, 1.0]) if affine is None else affine
    mask = np.zeros(SHAPE, dtype=bool)
    mask[1:-1, 1:-1, 1:-1] = True  # 512 voxels
    inside = np.flatnonzero(mask.ravel())
    order = rng.permutation(inside)
    blocks = {c: order[i * 120 : (i + 1) * 120] for i, c in enumerate(CLUSTERS)}
    rest = order[360:]
    if write_mask:
        write_image(
            derivative_path(
                root, sub=participant, task=task, space=space, desc="brain", suffix="mask", extension=".nii.gz"
            ),
            nib.Nifti1Image(mask.astype(np.uint8), affine),
        )
    volumes = {}
    for label in labels:
        r = np.zeros(SHAPE[0] * SHAPE[1] * SHAPE[2], dtype=np.float32)
        q = np.ones_like(r)
        r[inside] = rng.normal(0.0, 0.03, inside.size)
        q[inside] = rng.uniform(0.2, 1.0, inside.size)
        cluster = CLUSTER_OF.get(label)
        if cluster is not None:
            block = blocks[cluster]
            chosen = block[rng.random(block.size) < 0.75]
            r[chosen] = rng.uniform(0.15, 0.5, chosen.size)
            q[chosen] = rng.uniform(1e-4, 0.01, chosen.size)
        extra = rng.choice(rest, 10, replace=False)
        r[extra] = rng.uniform(0.15, 0.4, extra.size)
        q[extra] = 0.001
        r, q = r.reshape(SHAPE), q.reshape(SHAPE)
        volumes[label] = r
        for stat, vol in (("r", r), ("q", q)):
            if stat == "q" and not write_q:
                continue
            path = derivative_path(
                root,
                sub=participant,
                task=task,
                space=space,
                desc=label,
                stat=stat,
                suffix="statmap",
                extension=".nii.gz",
            )
            write_image(path, nib.Nifti1Image(vol.astype(np.float32), affine))
            write_json(
                sidecar_path(path),
                {
                    "Participant": participant,
                    "Task": task,
                    "Space": space,
                    "FeatureSpace": REGISTRY.get(label, f"user:{label}"),
                    "FeatureLabel": label,
                    "FeatureGroup": CLUSTER_OF.get(label, "other"),
                    "Statistic": stat,
                    "FDRLevel": fdr_level,
                    "PValueMethod": "permutation",
                },
            )
    return volumes


def planted_affinities(shuffle_seed: int | None = None) -> dict[str, float]:
    """Taskonomy-style dict ``"{source}__{target}"`` whose transfers follow the clusters.

    With ``shuffle_seed`` the 2018 names are shuffled across tasks, so the
    transfer pattern no longer follows the brain's clusters.
    """
    rng = np.random.default_rng(123)
    labels = list(LABELS)
    names = [OLD_NAME[label] for label in labels]
    if shuffle_seed is not None:
        names = list(np.random.default_rng(shuffle_seed).permutation(names))
    out = {}
    for i, s in enumerate(labels):
        for j, t in enumerate(labels):
            same = CLUSTER_OF[s] == CLUSTER_OF[t]
            out[f"{names[i]}__{names[j]}"] = 0.02 + 0.05 * same + rng.uniform(0, 0.01)
        out[f"self__{names[i]}"] = 0.2
        out[f"random__{names[i]}"] = 0.001
    out[f"{names[0]}__{names[1]}__{names[2]}"] = 0.5  # higher order: ignored
    return out


# --- simulations for the resampling and Mantel tests ---------------------------------------------

SIM_SHAPE = (24, 24, 24)


def smooth_noise(rng: np.random.Generator, n: int, sigma: float, shape=SIM_SHAPE) -> np.ndarray:
    """``(n, *shape)`` Gaussian noise smoothed with a Gaussian of ``sigma`` voxels (periodic), unit sd."""
    from scipy.ndimage import gaussian_filter

    out = np.empty((n, *shape))
    for i in range(n):
        z = rng.normal(size=shape)
        if sigma > 0:
            z = gaussian_filter(z, sigma, mode="wrap")
        out[i] = z / z.std()
    return out


def star_tree_maps(rng: np.random.Generator, sigma: float, n_tasks: int = 6, clusters=None, threshold: float = 1.0):
    """Unthresholded and thresholded ``(n_tasks, *SIM_SHAPE)`` maps of one participant.

    Every task: a shared smooth pattern + its own smooth noise (a star tree: no
    task pair is more alike than another). With ``clusters`` (cluster index per
    task) each cluster adds its own smooth pattern, so its tasks form a clade.
    Voxels above ``threshold`` "survive"; the others are 0.
    """
    base = smooth_noise(rng, 1, sigma)[0]
    noise = smooth_noise(rng, n_tasks, sigma)
    if clusters is None:
        vols = base + noise
    else:
        clusters = np.asarray(clusters)
        patterns = smooth_noise(rng, int(clusters.max()) + 1, sigma)
        vols = base + patterns[clusters] + 0.6 * noise
    return vols, np.where(vols > threshold, vols, 0.0)


def main_effect_null(rng: np.random.Generator, n_tasks: int, kind: str, n_voxels: int = 2000):
    """Brain and reference ``(F, F)`` similarities that share a per-task main effect and nothing else.

    Task ``i`` has strength ``a_i``; in the brain it sets how many voxels of its
    thresholded map survive (random voxels, so no pair of tasks shares anything
    beyond chance overlap); the reference is ``f(a_i, a_j)`` + independent noise with
    ``f`` additive (``add``), multiplicative (``mult``) or ``min``.
    """
    a = rng.normal(size=n_tasks)
    p = 0.02 + 0.3 * (a - a.min()) / (a.max() - a.min())
    maps = np.where(rng.random((n_tasks, n_voxels)) < p[:, None], rng.uniform(0.1, 0.5, (n_tasks, n_voxels)), 0.0)
    if kind == "add":
        ref = a[:, None] + a[None, :]
    elif kind == "mult":
        ref = np.exp(a)[:, None] * np.exp(a)[None, :]
    else:
        ref = np.minimum(a[:, None], a[None, :])
    noise = rng.normal(0.0, 0.3 * ref.std(), ref.shape)
    return maps, ref + (noise + noise.T) / 2


def run_group(root: Path, *, bids_dir: Path | None = None, **settings):
    """The group level on the participant outputs in ``root`` through the workflow; its ``GroupResult``.

    ``settings`` are :class:`~bids_taskenc.workflow.group.GroupSettings` fields. Without ``bids_dir`` (or
    ``roi_dir=``) no ROI masks are looked for.
    """
    from bids_taskenc.workflow.group import GroupSettings
    from bids_taskenc.workflow.group import run_group as run

    return run(bids_dir or root, root, GroupSettings(**settings)).result
