"""Volume statistic maps sampled onto cortical surfaces and written as GIFTI.

Sampling is nilearn's :func:`~nilearn.surface.vol_to_surf` along the line
from the white to the pial surface of each vertex. Vertices whose samples all
fall outside the volume (or the brain mask) are NaN. p and q are sampled like
every other map, for display: they are not recomputed on the surface, so
thresholds belong to the volume maps.
"""

from __future__ import annotations

import warnings

import nibabel as nib
import numpy as np

from ..bids.surfaces import HEMIS, SurfaceSet
from .atomic import write_image, write_json
from .intents import gifti_intent_meta, sidecar_intent
from .naming import derivative_path, sidecar_path
from .statistics import description, is_discrete

#: GIFTI AnatomicalStructurePrimary per hemisphere.
STRUCTURES = {"L": "CortexLeft", "R": "CortexRight"}


def _mesh(mesh):
    """A path is loaded by nilearn; a nilearn mesh object is used as is."""
    return str(mesh) if not hasattr(mesh, "coordinates") else mesh


def sample_to_surface(
    img: nib.Nifti1Image,
    surfaces: SurfaceSet,
    hemi: str,
    *,
    mask_img: nib.Nifti1Image | None = None,
    discrete: bool = False,
) -> np.ndarray:
    """Values of a 3-D map at the vertices of one hemisphere, shape (n_vertices,), float32.

    Parameters
    ----------
    img : Nifti1Image
        The volume map.
    surfaces : SurfaceSet
    hemi : {'L', 'R'}
    mask_img : Nifti1Image, optional
        Only voxels inside this mask are sampled (outside the brain, a map's
        fill value is not data).
    discrete : bool
        Value of the voxel nearest to the vertex's mid-thickness point (grid
        values such as alpha) instead of the mean of linearly interpolated
        samples along the white-to-pial line.
    """
    from nilearn import surface

    if discrete:
        return _nearest_mid_thickness(img, surfaces, hemi, mask_img)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Mean of empty slice")
        values = surface.vol_to_surf(
            img,
            _mesh(surfaces.pial[hemi]),
            inner_mesh=_mesh(surfaces.white[hemi]),
            mask_img=mask_img,
            interpolation="linear",
        )
    return np.asarray(values, dtype=np.float32)


def _coordinates(mesh) -> np.ndarray:
    from nilearn import surface

    return np.asarray(surface.load_surf_mesh(_mesh(mesh)).coordinates, dtype=np.float64)


def _nearest_mid_thickness(img, surfaces: SurfaceSet, hemi: str, mask_img) -> np.ndarray:
    """Value of the voxel nearest to each vertex's mid-thickness point (NaN outside the grid or mask)."""
    mid = 0.5 * (_coordinates(surfaces.pial[hemi]) + _coordinates(surfaces.white[hemi]))
    ijk = np.rint(nib.affines.apply_affine(np.linalg.inv(img.affine), mid)).astype(int)
    data = np.asarray(img.dataobj, dtype=np.float32)
    inside = np.all((ijk >= 0) & (ijk < np.array(data.shape[:3])), axis=1)
    values = np.full(len(mid), np.nan, np.float32)
    i, j, k = ijk[inside].T
    values[inside] = data[i, j, k]
    if mask_img is not None:
        keep = np.zeros(len(mid), bool)
        keep[inside] = np.asarray(mask_img.dataobj)[i, j, k] > 0
        values[~keep] = np.nan
    return values


def write_surface_statmap(root, values: np.ndarray, hemi: str, sidecar: dict, **entities):
    """Write ``..._hemi-<h>_space-<s>_..._statmap.func.gii`` and its JSON sidecar.

    Parameters
    ----------
    root : path
        Output root (or staging folder).
    values : ndarray, shape (n_vertices,)
    hemi : {'L', 'R'}
    sidecar : dict
        JSON sidecar content; ``Statistic`` and ``Description`` are added.
    **entities
        Derivative entities (``sub``, ``task``, ``space``, ``desc``, ``stat`` ...).
    """
    stat = entities.get("stat")
    meta = {
        "AnatomicalStructurePrimary": STRUCTURES[hemi],
        "Statistic": str(stat),
        "Description": description(stat, sidecar),
    }
    intent = sidecar_intent(str(stat), sidecar)
    array = nib.gifti.GiftiDataArray(
        np.asarray(values, dtype=np.float32),
        intent=intent.nifti_string,
        datatype="NIFTI_TYPE_FLOAT32",
        meta=nib.gifti.GiftiMetaData({**meta, **gifti_intent_meta(intent)}),
    )
    img = nib.GiftiImage(
        darrays=[array],
        meta=nib.gifti.GiftiMetaData({"AnatomicalStructurePrimary": STRUCTURES[hemi], "GeneratedBy": "bids_taskenc"}),
    )
    path = derivative_path(root, suffix="statmap", extension=".func.gii", hemi=hemi, **entities)
    write_image(path, img)
    write_json(sidecar_path(path), {**meta, **sidecar})
    return path


def project_statmaps(
    root,
    maps: list[tuple[np.ndarray, float, dict, dict]],
    surfaces: SurfaceSet,
    *,
    unmask,
    mask_img: nib.Nifti1Image | None = None,
    chunk: int = 24,
) -> list:
    """Sample volume maps onto both hemispheres and write one GIFTI per map and hemisphere.

    Parameters
    ----------
    root : path
        Output root (or staging folder).
    maps : list of (values, fill, sidecar, entities)
        Each map as its values over the mask voxels (n_voxels,), the fill value
        outside the mask, its sidecar content and derivative entities;
        ``space`` is replaced by the surfaces' space.
    surfaces : SurfaceSet
    unmask : callable (values, fill) -> Nifti1Image
        Puts a vector of mask voxels back on the volume grid.
    mask_img : Nifti1Image, optional
        Brain mask of the maps.
    chunk : int
        Continuous maps sampled per nilearn call (a 4-D image of ``chunk``
        volumes; bounds the memory a run with many feature spaces needs).

    Returns
    -------
    The written GIFTI paths. Continuous maps are sampled ``chunk`` at a time,
    grid-valued ones (alpha) by nearest voxel.
    """
    discrete = [m for m in maps if is_discrete(m[3].get("stat"))]
    continuous = [m for m in maps if not is_discrete(m[3].get("stat"))]
    batches = [continuous[i : i + chunk] for i in range(0, len(continuous), chunk)] + [[m] for m in discrete]
    paths = []
    for batch in batches:
        images = [unmask(values, fill) for values, fill, _, _ in batch]
        on_grid = is_discrete(batch[0][3].get("stat"))
        if not on_grid:
            stack = nib.Nifti1Image(np.stack([np.asarray(i.dataobj, np.float32) for i in images], -1), images[0].affine)
        for hemi in HEMIS:
            if on_grid:
                sampled = sample_to_surface(images[0], surfaces, hemi, mask_img=mask_img, discrete=True)[:, None]
            else:
                sampled = sample_to_surface(stack, surfaces, hemi, mask_img=mask_img).reshape(-1, len(batch))
            for (_, _, sidecar, entities), values in zip(batch, sampled.T):
                stat = entities.get("stat")
                meta = {
                    **sidecar,
                    "SurfaceSource": surfaces.source,
                    "SurfaceSampling": {
                        "Method": "nilearn.surface.vol_to_surf, line from white to pial",
                        "Interpolation": ("nearest voxel at mid-thickness" if on_grid else "linear"),
                        "OutsideMask": "NaN",
                    },
                }
                if stat in ("p", "q"):
                    meta["SurfaceNote"] = "sampled from the volume for display; not recomputed on the surface"
                paths.append(write_surface_statmap(root, values, hemi, meta, **{**entities, "space": surfaces.space}))
    return paths
