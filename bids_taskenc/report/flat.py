"""fsaverage5 flat maps: nilearn's bundled flat meshes rasterised once, volumes sampled onto the surface."""

from __future__ import annotations

import nibabel as nib
import numpy as np

from bids_taskenc.report.inputs import FLAT_SPACE
from bids_taskenc.report.tiles import MapSpec, hstack


class FlatCanvas:
    """nilearn's bundled fsaverage5 flat meshes rasterised once, with sulcal depth as background.

    Every pixel of a hemisphere's image knows the mesh face it falls in (or
    none), so drawing a map is one indexing of per-face colours.

    Parameters
    ----------
    height : int
        Pixels of each hemisphere's image in the vertical direction.
    """

    def __init__(self, height: int = 260):
        from matplotlib.tri import Triangulation
        from nilearn.datasets import load_fsaverage, load_fsaverage_data

        flat = load_fsaverage(FLAT_SPACE)["flat"]
        sulc = load_fsaverage_data(mesh=FLAT_SPACE, mesh_type="flat", data_type="sulcal")
        self.hemis = {}
        for hemi, part in (("L", "left"), ("R", "right")):
            mesh = flat.parts[part]
            xy, faces = np.asarray(mesh.coordinates)[:, :2], np.asarray(mesh.faces)
            used = xy[np.unique(faces)]
            (x0, y0), (x1, y1) = used.min(axis=0), used.max(axis=0)
            width = int(round(height * (x1 - x0) / (y1 - y0)))
            px, py = np.meshgrid(np.linspace(x0, x1, width), np.linspace(y0, y1, height), indexing="ij")
            finder = Triangulation(xy[:, 0], xy[:, 1], faces).get_trifinder()
            face = np.asarray(finder(px.ravel(), py.ravel())).reshape(width, height)
            depth = np.asarray(sulc.data.parts[part], dtype=float)[faces].mean(axis=1)
            grey = np.where(depth > 0, 0.62, 0.80)  # sulci darker than gyri
            self.hemis[hemi] = (face, faces, grey)
        self.n_vertices = {h: int(flat.parts[p].coordinates.shape[0]) for h, p in (("L", "left"), ("R", "right"))}
        self.header = ["left hemisphere", "right hemisphere"]
        self.letters = [("", ""), ("", "")]

    def tile(self, spec: MapSpec, cmap, norm) -> tuple[np.ndarray, list[tuple[float, float]]]:
        """Both hemispheres of ``spec.surface`` (coloured where ``spec.surface_shown``)."""
        images = []
        for hemi in ("L", "R"):
            face, faces, grey = self.hemis[hemi]
            values = np.asarray(spec.surface[hemi], dtype=float)
            shown = np.asarray(spec.surface_shown[hemi], dtype=bool) & np.isfinite(values)
            colours = np.repeat(grey[:, None], 3, axis=1)
            no_data = ~np.isfinite(values)[faces].all(axis=1)  # outside the volume or the brain mask: pale
            colours[no_data] = 0.35 * colours[no_data] + 0.65
            face_shown = shown[faces].all(axis=1)
            if face_shown.any():
                colours[face_shown] = cmap(norm(np.nan_to_num(values)[faces[face_shown]].mean(axis=1)))[:, :3]
            colours = np.vstack([colours, np.ones((1, 3))])  # index -1: outside the mesh, white
            images.append(colours[face])
        return hstack(images, gap=images[0].shape[1] // 20)


def sample_to_fsaverage5(volumes: list[nib.Nifti1Image], mask_img: nib.Nifti1Image) -> list[dict]:
    """Volumes in an MNI template space sampled onto fsaverage5 (nilearn ``vol_to_surf``).

    Returns one ``{'L': (n_vertices,), 'R': ...}`` per volume; NaN where no
    brain voxel is sampled.
    """
    import warnings

    from nilearn.datasets import load_fsaverage
    from nilearn.surface import vol_to_surf

    fs = load_fsaverage(FLAT_SPACE)
    stack = nib.Nifti1Image(
        np.stack([np.asarray(v.dataobj, dtype=np.float32) for v in volumes], axis=-1), volumes[0].affine
    )
    out = [dict() for _ in volumes]
    for hemi, part in (("L", "left"), ("R", "right")):
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = vol_to_surf(
                stack,
                fs["pial"].parts[part],
                inner_mesh=fs["white_matter"].parts[part],
                mask_img=mask_img,
                interpolation="linear",
            )
        values = np.asarray(values, dtype=np.float64).reshape(values.shape[0], -1)
        for i in range(len(volumes)):
            out[i][hemi] = values[:, i]
    return out
