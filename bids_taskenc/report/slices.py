"""Orthogonal slices and an axial mosaic of a volume, over anatomy, with ROI outlines (numpy rasters)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
from matplotlib.colors import Colormap, Normalize

from bids_taskenc.core.masks import mask_array
from bids_taskenc.report.tiles import MASK_GREY, MapSpec, hstack, panel_outlines

_OPPOSITE = {"L": "R", "R": "L", "A": "P", "P": "A", "S": "I", "I": "S"}


class SliceCanvas:
    """A report's brain mask in RAS voxel order, with the cut and axial slices every map shares.

    Parameters
    ----------
    mask_img : Nifti1Image
        3-D brain mask of the maps.
    cut_index : int, optional
        Index (into the mask's voxel vector) of the voxel the orthogonal planes
        go through; default the voxel nearest the mask's centre of mass.
    n_axial : int
        Evenly spaced axial slices after the three planes (one voxel step
        between all of them, spread over the mask's extent).
    underlay : ndarray, optional
        An anatomical image on the mask's grid (same shape, voxel order of
        ``mask_img``), drawn in grey under the maps: full contrast inside the
        mask, paler outside it. Without it, the mask is drawn in flat grey.
    rois : dict, optional
        ``{name: (n_voxels,) bool}`` over the mask voxels: outlined in colour.
    """

    def __init__(
        self,
        mask_img: nib.Nifti1Image,
        cut_index: int | None = None,
        n_axial: int = 6,
        underlay: np.ndarray | None = None,
        rois: dict[str, np.ndarray] | None = None,
    ):
        mask = mask_array(mask_img)
        index = np.full(mask.shape, -1, dtype=np.int64)
        index[mask] = np.arange(int(mask.sum()))
        ornt = nib.orientations.io_orientation(mask_img.affine)
        self.index = nib.orientations.apply_orientation(index, ornt)  # RAS voxel order
        self.mask = self.index >= 0
        self.affine = mask_img.affine @ nib.orientations.inv_ornt_aff(ornt, mask.shape)
        zooms = np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))
        self.factors = np.maximum(1, np.rint(zooms / zooms.min())).astype(int)  # keeps anisotropic voxels' aspect
        ijk = np.argwhere(self.mask)
        self.lo, self.hi = ijk.min(axis=0), ijk.max(axis=0) + 1
        self.grey = None
        if underlay is not None:
            anat = nib.orientations.apply_orientation(np.asarray(underlay, dtype=np.float64), ornt)
            pad = 3  # a little anatomy around the analysed voxels
            self.lo = np.maximum(self.lo - pad, 0)
            self.hi = np.minimum(self.hi + pad, self.mask.shape)
            box = anat[tuple(slice(a, b) for a, b in zip(self.lo, self.hi))]
            tissue = box[np.isfinite(box) & (box > 0)]
            low, high = np.percentile(tissue, [1, 99]) if tissue.size else (0.0, 1.0)
            self.grey = np.clip((np.nan_to_num(anat) - low) / max(high - low, 1e-12), 0, 1)
        if cut_index is None:
            centre = ijk.mean(axis=0)
            self.cut = ijk[np.argmin(((ijk - centre) ** 2).sum(axis=1))]
        else:
            self.cut = np.argwhere(self.index == int(cut_index))[0]
        self.axial = evenly_spaced(int(ijk[:, 2].min()), int(ijk[:, 2].max()) + 1, n_axial)
        mm = nib.affines.apply_affine(self.affine, self.cut)
        self.header = [f"sagittal x={mm[0]:.0f}", f"coronal y={mm[1]:.0f}", f"axial z={mm[2]:.0f}"]
        self.header += [f"z={nib.affines.apply_affine(self.affine, [0, 0, k])[2]:.0f}" for k in self.axial]
        codes = nib.aff2axcodes(self.affine)  # ('R', 'A', 'S') after the reorientation, from the affine itself
        self.letters, self.vletters = [], []
        for _, (h, v) in self._panels():
            self.letters.append((_OPPOSITE[codes[h]], codes[h]))
            self.vletters.append((_OPPOSITE[codes[v]], codes[v]))
        self.rois = {}
        if rois:
            for name, vector in rois.items():
                self.rois[name] = self.volume(np.asarray(vector, dtype=float)) > 0.5

    def volume(self, values: np.ndarray) -> np.ndarray:
        """A vector over the mask voxels as a 3-D RAS array (NaN outside the mask)."""
        values = np.asarray(values, dtype=np.float64)
        out = np.full(self.index.shape, np.nan)
        out[self.mask] = values[self.index[self.mask]]
        return out

    def _panels(self):
        """(index expression, (horizontal axis, vertical axis)) of every panel of a tile."""
        lo, hi = self.lo, self.hi
        x, y, z = self.cut
        out = [
            (np.s_[x, lo[1] : hi[1], lo[2] : hi[2]], (1, 2)),
            (np.s_[lo[0] : hi[0], y, lo[2] : hi[2]], (0, 2)),
            (np.s_[lo[0] : hi[0], lo[1] : hi[1], z], (0, 1)),
        ]
        return out + [(np.s_[lo[0] : hi[0], lo[1] : hi[1], k], (0, 1)) for k in self.axial]

    def _scaled(self, img: np.ndarray, axes) -> np.ndarray:
        for dim, axis in enumerate(axes):
            img = np.repeat(img, self.factors[axis], axis=dim) if self.factors[axis] > 1 else img
        return img

    def tile(self, spec: MapSpec, cmap: Colormap, norm: Normalize) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """One map as a row of panels: RGB ``(width, height, 3)`` and each panel's (left, width) in pixels."""
        vals = self.volume(spec.values)
        shown = self.volume(spec.shown.astype(float)) > 0.5
        images = []
        for index, axes in self._panels():
            grey = None if self.grey is None else self.grey[index]
            images.append(self._scaled(_rgb(vals[index], self.mask[index], shown[index], cmap, norm, grey), axes))
        self.panel_heights = [img.shape[1] for img in images]
        return hstack(images, gap=self.gap(images))

    @staticmethod
    def gap(images: list[np.ndarray]) -> int:
        return max(2, images[0].shape[0] // 12)

    def outlines(self, spans: list[tuple[int, int]]) -> list[tuple[str, str, np.ndarray]]:
        """Voxel-edge outlines of every ROI in one tile's pixel coordinates: ``(name, colour, (n, 2, 2) segments)``."""
        return panel_outlines(
            [
                (
                    name,
                    [(self._scaled(roi[index], axes), left) for (index, axes), (left, _) in zip(self._panels(), spans)],
                )
                for name, roi in sorted(self.rois.items())
            ]
        )


def evenly_spaced(lo: int, hi: int, n: int) -> list[int]:
    """``n`` slice indices in ``[lo, hi)`` one fixed step apart, centred in the range (fewer if it is short)."""
    extent = hi - lo
    if extent <= n:
        return list(range(lo, hi))
    step = max(1, extent // (n + 1))
    start = lo + (extent - 1 - step * (n - 1)) // 2
    return [start + step * i for i in range(n)]


def _rgb(values, inside, shown, cmap, norm, grey=None) -> np.ndarray:
    """``(a, b)`` slice -> ``(a, b, 3)`` image: colour where shown; under it anatomy or the mask in grey.

    With ``grey`` (anatomy scaled to 0-1): full contrast inside the mask, paler
    outside it. Without: white outside, flat grey inside.
    """
    if grey is None:
        rgb = np.ones(values.shape + (3,))
        rgb[inside] = MASK_GREY
    else:
        level = np.where(inside, 0.08 + 0.62 * grey, 0.62 + 0.3 * grey)  # darkish inside: colours stand out
        rgb = np.repeat(level[..., None], 3, axis=-1)
    show = shown & inside & np.isfinite(values)
    if show.any():
        rgb[show] = cmap(norm(values[show]))[:, :3]
    return rgb
