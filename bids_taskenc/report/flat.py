"""fsaverage5 flat maps: nilearn's bundled flat meshes rasterised once, volumes sampled onto the surface."""

from __future__ import annotations

import nibabel as nib
import numpy as np
from matplotlib.colors import Colormap, Normalize

from bids_taskenc.report.inputs import FLAT_SPACE
from bids_taskenc.report.tiles import MapSpec, hstack, panel_outlines


class FlatCanvas:
    """nilearn's bundled fsaverage5 flat meshes rasterised once, with sulcal depth as background.

    Every pixel of a hemisphere's image knows the mesh face it falls in (or none) and its barycentric weights in
    that face, so a map is drawn by interpolating its vertex values linearly inside each face (one weighted sum of
    three gathers per pixel): smooth at the raster's resolution, not a mosaic of flat faces. A pixel is coloured
    where the interpolated "shown" indicator is at least 0.5 and all three vertices have a value; pale where the
    map has no data. The orientation (which end of each flat patch is anterior, which side dorsal) is read from
    the pial mesh, not assumed: :attr:`letters` holds it for the header, :attr:`orientation` says it in words.

    Parameters
    ----------
    height : int
        Pixels of each hemisphere's image in the vertical direction.
    """

    def __init__(self, height: int = 420):
        from nilearn.datasets import load_fsaverage, load_fsaverage_data

        meshes = load_fsaverage(FLAT_SPACE)
        sulc = load_fsaverage_data(mesh=FLAT_SPACE, mesh_type="flat", data_type="sulcal")
        self.hemis: dict[str, _FlatRaster] = {}
        self.letters, dorsal_up = [], []
        for hemi, part in (("L", "left"), ("R", "right")):
            mesh = meshes["flat"].parts[part]
            raster = _FlatRaster(np.asarray(mesh.coordinates, dtype=np.float64)[:, :2], np.asarray(mesh.faces), height)
            depth = raster.interpolate(np.asarray(sulc.data.parts[part], dtype=float))
            raster.grey = np.where(depth > 0, 0.62, 0.80)  # sulci darker than gyri
            self.hemis[hemi] = raster
            anterior, superior = _flat_axes(raster, np.asarray(meshes["pial"].parts[part].coordinates))
            self.letters.append(("A", "P") if anterior[0] < 0 else ("P", "A"))
            dorsal_up.append(superior[1] > 0)
        self.n_vertices = {h: r.n_vertices for h, r in self.hemis.items()}
        self.header = ["left hemisphere", "right hemisphere"]
        self.orientation = (
            "A and P mark the anterior and posterior ends of each flattened hemisphere (from the pial mesh), "
            + ("dorsal is up" if all(dorsal_up) else "dorsal is not up in every hemisphere")
        )

    def tile(self, spec: MapSpec, cmap: Colormap, norm: Normalize) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """Both hemispheres of ``spec.surface`` (coloured where ``spec.surface_shown``)."""
        if spec.surface is None or spec.surface_shown is None:
            raise ValueError(f"{spec.title}: no surface values to draw (sample the volume onto the surface first)")
        images = []
        for hemi in ("L", "R"):
            raster = self.hemis[hemi]
            values = np.asarray(spec.surface[hemi], dtype=float)
            finite = np.isfinite(values)
            value = raster.interpolate(np.where(finite, values, 0.0))
            has_data = raster.all_of(finite)
            shown = raster.interpolate(np.asarray(spec.surface_shown[hemi], dtype=float) * finite) >= 0.5
            rgb = np.ones(raster.face.shape + (3,))  # outside the mesh: white
            on_mesh = raster.face >= 0
            grey = np.where(has_data, raster.grey, 0.35 * raster.grey + 0.65)  # no data: pale
            rgb[on_mesh] = grey[on_mesh, None]
            colour = on_mesh & has_data & shown
            if colour.any():
                rgb[colour] = cmap(norm(value[colour]))[:, :3]
            images.append(rgb)
        return hstack(images, gap=self.gap)

    @property
    def gap(self) -> int:
        return self.hemis["L"].face.shape[1] // 20

    def regions(self, surfaces: dict[str, dict[str, np.ndarray]]) -> FlatRegions:
        """These flat maps with region outlines: ``{name: {'L': (n_vertices,) bool, 'R': ...}}``."""
        return FlatRegions(self, surfaces)


class FlatRegions:
    """A :class:`FlatCanvas` that also outlines regions given per vertex (ROI masks sampled onto fsaverage5)."""

    def __init__(self, canvas: FlatCanvas, surfaces: dict[str, dict[str, np.ndarray]]):
        self.canvas, self.surfaces = canvas, surfaces
        self.header, self.letters, self.n_vertices = canvas.header, canvas.letters, canvas.n_vertices
        self.orientation = canvas.orientation

    def tile(self, spec: MapSpec, cmap: Colormap, norm: Normalize) -> tuple[np.ndarray, list[tuple[int, int]]]:
        return self.canvas.tile(spec, cmap, norm)

    def outlines(self, spans: list[tuple[int, int]]) -> list[tuple[str, str, np.ndarray]]:
        """Pixel-edge outlines of every region in one tile's pixel coordinates: ``(name, colour, (n, 2, 2))``."""

        def inside(hemi: str, values) -> np.ndarray:
            raster = self.canvas.hemis[hemi]
            return (raster.interpolate(np.asarray(values, dtype=float)) >= 0.5) & (raster.face >= 0)

        return panel_outlines(
            [
                (name, [(inside(hemi, per_hemi[hemi]), left) for hemi, (left, _) in zip(("L", "R"), spans)])
                for name, per_hemi in sorted(self.surfaces.items())
            ]
        )


class _FlatRaster:
    """One flat hemisphere on a pixel grid: each pixel's face (``-1`` off the mesh) and barycentric weights.

    ``face`` is ``(width, height)``; ``weights`` ``(width, height, 3)``; :meth:`interpolate` turns a per-vertex
    vector into a ``(width, height)`` image (0 off the mesh).
    """

    def __init__(self, xy: np.ndarray, faces: np.ndarray, height: int):
        from matplotlib.tri import Triangulation

        used = xy[np.unique(faces)]
        (x0, y0), (x1, y1) = used.min(axis=0), used.max(axis=0)
        width = int(round(height * (x1 - x0) / (y1 - y0)))
        px, py = np.meshgrid(np.linspace(x0, x1, width), np.linspace(y0, y1, height), indexing="ij")
        finder = Triangulation(xy[:, 0], xy[:, 1], faces).get_trifinder()
        self.face = np.asarray(finder(px.ravel(), py.ravel())).reshape(width, height)
        self.faces, self.n_vertices, self.vertex_xy = faces, int(xy.shape[0]), xy
        self.xy = np.stack([px, py], axis=-1)
        self.weights = np.zeros((width, height, 3))
        on = self.face >= 0
        corners = xy[faces[self.face[on]]]  # (n, 3, 2)
        a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]
        p = self.xy[on]
        det = (b[:, 1] - c[:, 1]) * (a[:, 0] - c[:, 0]) + (c[:, 0] - b[:, 0]) * (a[:, 1] - c[:, 1])
        w0 = ((b[:, 1] - c[:, 1]) * (p[:, 0] - c[:, 0]) + (c[:, 0] - b[:, 0]) * (p[:, 1] - c[:, 1])) / det
        w1 = ((c[:, 1] - a[:, 1]) * (p[:, 0] - c[:, 0]) + (a[:, 0] - c[:, 0]) * (p[:, 1] - c[:, 1])) / det
        # a pixel centre just outside its face (the finder's tolerance) gets clipped weights, renormalised so that
        # they still sum to 1 (a constant map stays constant)
        weights = np.clip(np.stack([w0, w1, 1.0 - w0 - w1], axis=-1), 0.0, 1.0)
        self.weights[on] = weights / weights.sum(axis=-1, keepdims=True)
        self.grey = np.full(self.face.shape, 1.0)

    def interpolate(self, vertex_values: np.ndarray) -> np.ndarray:
        """``(n_vertices,)`` -> ``(width, height)``: linear inside each face, 0 off the mesh."""
        out = np.zeros(self.face.shape)
        on = self.face >= 0
        out[on] = np.einsum(
            "nk,nk->n", self.weights[on], np.asarray(vertex_values, dtype=float)[self.faces[self.face[on]]]
        )
        return out

    def all_of(self, vertex_flags: np.ndarray) -> np.ndarray:
        """``(width, height)`` bool: on the mesh and true at all three vertices of the pixel's face."""
        out = np.zeros(self.face.shape, dtype=bool)
        on = self.face >= 0
        out[on] = np.asarray(vertex_flags, dtype=bool)[self.faces[self.face[on]]].all(axis=1)
        return out


def _flat_axes(raster: _FlatRaster, pial: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Directions on the flat patch in which pial y (anterior) and z (superior) grow, each a 2-vector in flat (x, y).

    Least squares of the pial coordinate on the flat coordinates over the vertices of the patch (on nilearn's
    fsaverage5 both fit with r > 0.85).
    """
    used = np.unique(raster.faces)  # vertices cut from the flat patch (the medial wall) are in no face
    return _fit_axis(raster.vertex_xy[used], pial[used, 1]), _fit_axis(raster.vertex_xy[used], pial[used, 2])


def _fit_axis(xy: np.ndarray, target: np.ndarray) -> np.ndarray:
    design = np.c_[xy, np.ones(len(xy))]
    coef, *_ = np.linalg.lstsq(design, target, rcond=None)
    return coef[:2]


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
    out: list[dict[str, np.ndarray]] = [{} for _ in volumes]
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
