"""Brain pictures of the reports, and the choice among them.

Three views, tried in this order by :func:`choose_view`:

1. **pycortex flatmap** of the participant's own cortex, when pycortex is
   installed (optional extra ``flatmaps``) and a pycortex subject exists for
   the participant (``--pycortex-subject``, or a subject named ``sub-X``/``X``
   in the pycortex filestore) with a transform for the maps' grid;
2. **fsaverage5 flat map** on nilearn's bundled flat meshes, for template-space
   outputs: the fsaverage5 GIFTI maps the participant level wrote, or (when
   there are none) the volume sampled with :func:`nilearn.surface.vol_to_surf`;
3. **orthogonal slices** of the volume otherwise (three planes through a cut
   shared by every map of a report, plus evenly spaced axial slices), over
   the participant's preprocessed T1w from the fMRIPrep folder the maps came
   from (or, in an MNI space without one, nilearn's MNI152 template)
   resampled to the maps' grid, with ROI outlines when the run had ROI masks,
   and orientation letters from the affine.

A pycortex drawing that fails (a transform made for another grid, a broken
filestore) is a WARNING, and the report falls back to the next view.

Each view turns a :class:`MapSpec` (values over the brain-mask voxels, which
voxels to colour, colour scale) into an RGB *tile* (a numpy array); a figure
stacks the tiles of several maps (one row each: all feature spaces in one
picture, as the paper's Fig. 2) and is drawn with a single ``imshow``; maps
of one kind share one colour bar, maps of different kinds (noise ceiling, a
fraction; split-half r, diverging) get one each. Everything runs headless
(Agg) and offline. Slices and flat maps are rasterised with numpy, not drawn
with ``nilearn.plotting`` or ``plot_surf``: those cost 0.4-2 s per map, which
every participant run would pay (21 feature spaces). ROI outlines are one
``LineCollection`` of voxel edges per ROI.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import colors as mcolors  # noqa: E402
from matplotlib import patheffects  # noqa: E402
from matplotlib.cm import ScalarMappable  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from bids_taskenc.core.masks import mask_array, to_volume  # noqa: E402
from bids_taskenc.report.figures import group_color, save  # noqa: E402
from bids_taskenc.report.inputs import FLAT_SPACE, ParticipantOutputs, find_anatomy  # noqa: E402

log = logging.getLogger(__name__)

#: ``space-`` prefixes of volumetric MNI templates that fsaverage5 is registered to.
TEMPLATE_PREFIXES = ("MNI152", "MNI305", "MNIColin27")

#: Grey of in-brain voxels that are not coloured; white is outside the brain.
MASK_GREY = 0.80

#: ROI outline colours, in the order of the ROI names (visible over grey anatomy, inferno and RdBu).
OUTLINE_COLOURS = ("#00e5ff", "#39ff14", "#ff2bd6", "#2f6bff", "#ff7f0e", "#00a86b", "#b266ff", "#8b4513")

_OPPOSITE = {"L": "R", "R": "L", "A": "P", "P": "A", "S": "I", "I": "S"}


@dataclass
class MapSpec:
    """One map to draw.

    Attributes
    ----------
    title : str
    values : ndarray, shape (n_voxels,)
        Over the brain-mask voxels.
    shown : ndarray of bool, shape (n_voxels,)
        Voxels drawn in colour (e.g. q below the FDR level); the rest is grey.
    cmap : str
    vmin, vmax : float
        Colour scale (shared by the maps of one kind, so they compare).
    label : str
        Colour-bar label with units.
    group : str, optional
        Feature-space group (colours the row title).
    surface : dict, optional
        ``{'L': (n_vertices,), 'R': ...}`` values on fsaverage5 (from GIFTI).
    surface_shown : dict, optional
        Same keys, booleans: vertices drawn in colour.
    """

    title: str
    values: np.ndarray
    shown: np.ndarray
    cmap: str
    vmin: float
    vmax: float
    label: str
    group: str | None = None
    surface: dict | None = None
    surface_shown: dict | None = None


def shared_vmax(vectors, masks, floor: float) -> float:
    """A colour-scale maximum shared by several maps: the largest 99th percentile of |values| where shown."""
    tops = [np.percentile(np.abs(v[m]), 99) for v, m in zip(vectors, masks) if m.any()]
    return max([floor, *tops])


@dataclass
class BrainView:
    """Which brain picture a report uses, and why (both sentences go into the page)."""

    kind: str  # "pycortex", "flat" or "slices"
    description: str
    reason: str
    source: str | None = None  # flat: "gifti" or "vol_to_surf"
    pycortex_subject: str | None = None
    pycortex_xfm: str | None = None
    notes: list[str] = field(default_factory=list)
    underlay: str | None = None  # slices: what is drawn underneath (or why only the mask)
    outlines: str | None = None  # slices: where the ROI outlines come from (or why there are none)


def is_template_space(space: str | None) -> bool:
    """True for volumetric MNI template spaces (``MNI152NLin2009cAsym`` ...)."""
    return bool(space) and space.startswith(TEMPLATE_PREFIXES)


# --------------------------------------------------------------------------- choosing


def find_pycortex_subject(
    participant: str, requested: str | None = None, xfm: str | None = None
) -> tuple[str | None, str | None, str]:
    """A pycortex subject and transform for a participant, or the reason there is none.

    Parameters
    ----------
    participant : str
        Label without ``sub-``.
    requested : str, optional
        ``--pycortex-subject`` value for this participant; without it, subjects
        named ``sub-<label>`` or ``<label>`` in the pycortex filestore are used.
    xfm : str, optional
        Transform name; default: the subject's only transform.

    Returns
    -------
    (subject, xfm, message)
        ``subject`` is None when pycortex cannot be used; ``message`` says why,
        or which subject was found and how.
    """
    if importlib.util.find_spec("cortex") is None:
        return (
            None,
            None,
            ("pycortex is not installed (optional: pip install 'bids_taskenc[flatmaps]', needs a C compiler)"),
        )
    try:
        import cortex
    except Exception as exc:  # a broken pycortex install must not break the report
        return None, None, f"pycortex could not be imported ({type(exc).__name__}: {exc})"
    store = Path(getattr(cortex.db, "filestore", None) or cortex.database.default_filestore)
    candidates = [requested] if requested else [f"sub-{participant}", participant]
    subject = next((c for c in candidates if (store / c / "surfaces").is_dir()), None)
    if subject is None:
        how = "given by --pycortex-subject" if requested else "named sub-<label> or <label>"
        return None, None, f"no pycortex subject {' or '.join(candidates)} ({how}) in the filestore {store}"
    transforms = sorted(p.name for p in (store / subject / "transforms").glob("*") if p.is_dir())
    if xfm is None:
        if len(transforms) != 1:
            return (
                None,
                None,
                (
                    f"pycortex subject {subject} has {len(transforms)} transforms "
                    f"({', '.join(transforms) or 'none'}); name one with --pycortex-xfm"
                ),
            )
        xfm = transforms[0]
    elif xfm not in transforms:
        return None, None, f"pycortex subject {subject} has no transform {xfm!r} ({', '.join(transforms) or 'none'})"
    how = "given by --pycortex-subject" if requested else "found in the pycortex filestore"
    return subject, xfm, f"pycortex subject {subject} ({how}), transform {xfm}"


_FLAT_DESCRIPTION = (
    f"flat maps of both hemispheres on nilearn's bundled {FLAT_SPACE} flat meshes, "
    "sulci dark and gyri light grey underneath, pale where the maps have no data"
)
_SLICES_DESCRIPTION = (
    "orthogonal slices (sagittal, coronal, axial) through one cut shared by every map, "
    "and an axial mosaic; grey is the {mask}, there is no anatomical background"
)
_PARTICIPANT_SLICES = (
    "orthogonal slices (sagittal, coronal, axial) through one cut shared by every map, and "
    "evenly spaced axial slices, in neurological orientation (letters from the affine)"
)


def choose_view(
    data: ParticipantOutputs, *, pycortex_subject: str | None = None, pycortex_xfm: str | None = None
) -> BrainView:
    """Pick the brain picture for one participant's maps (see the module docstring for the order)."""
    subject, xfm, message = find_pycortex_subject(data.participant, pycortex_subject, pycortex_xfm)
    if subject is not None:
        return BrainView(
            "pycortex",
            f"pycortex flatmaps of {subject}'s cortex (quickflat, curvature background)",
            f"a pycortex subject exists for this participant: {message}.",
            pycortex_subject=subject,
            pycortex_xfm=xfm,
        )
    return _view_without_pycortex(data, f"No pycortex flatmap: {message}.")


def fallback_view(data: ParticipantOutputs, view: BrainView, error: Exception) -> BrainView:
    """The view after a failed pycortex drawing: the one :func:`choose_view` picks without pycortex."""
    why = f"{type(error).__name__}: {error}".strip()
    return _view_without_pycortex(
        data,
        f"No pycortex flatmap: drawing pycortex subject {view.pycortex_subject} with transform "
        f"{view.pycortex_xfm} failed ({why[:300]}); a transform made for another grid than the maps' does this.",
    )


def _view_without_pycortex(data: ParticipantOutputs, not_pycortex: str) -> BrainView:
    first = data.features[0].label if data.features else None
    if first is not None and data.surface_map(first, "r") is not None:
        return BrainView(
            "flat",
            _FLAT_DESCRIPTION,
            f"the participant level wrote {FLAT_SPACE} GIFTI maps (space {data.space} is a template), "
            f"drawn here as they are. {not_pycortex}",
            source="gifti",
        )
    if is_template_space(data.space):
        return BrainView(
            "flat",
            _FLAT_DESCRIPTION,
            f"space {data.space} is an MNI template, to which {FLAT_SPACE} is registered; no {FLAT_SPACE} "
            "GIFTI maps were found, so the volume was sampled onto the surface here "
            f"(nilearn vol_to_surf, white-to-pial line). {not_pycortex}",
            source="vol_to_surf",
        )
    return BrainView(
        "slices",
        _PARTICIPANT_SLICES,
        f"space {data.space} is the participant's own, so no template surface applies. {not_pycortex}",
    )


def volume_view(data: ParticipantOutputs) -> BrainView:
    """Slices of a template-space participant's volume, drawn beside its flat maps."""
    return BrainView(
        "slices",
        _PARTICIPANT_SLICES,
        f"the flat maps show the cortical ribbon only; space {data.space} is a volume, shown here too.",
    )


def choose_group_view(space: str) -> BrainView:
    """The brain picture of the group maps: fsaverage5 flat maps for an MNI template, else slices.

    pycortex is not offered: its subjects are individual brains, the group maps are not.
    """
    if is_template_space(space):
        return BrainView(
            "flat",
            _FLAT_DESCRIPTION,
            f"space {space} is an MNI template, to which {FLAT_SPACE} is registered; the group volume "
            "was sampled onto the surface here (nilearn vol_to_surf, white-to-pial line).",
            source="vol_to_surf",
        )
    return BrainView(
        "slices",
        _SLICES_DESCRIPTION.format(mask="group mask"),
        f"space {space} is not an MNI template, so no template surface applies.",
    )


# --------------------------------------------------------------------------- slices


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

    def tile(self, spec: MapSpec, cmap, norm) -> tuple[np.ndarray, list[tuple[float, float]]]:
        """One map as a row of panels: RGB ``(width, height, 3)`` and each panel's (left, width) in pixels."""
        vals = self.volume(spec.values)
        shown = self.volume(spec.shown.astype(float)) > 0.5
        images = []
        for index, axes in self._panels():
            grey = None if self.grey is None else self.grey[index]
            images.append(self._scaled(_rgb(vals[index], self.mask[index], shown[index], cmap, norm, grey), axes))
        self.panel_heights = [img.shape[1] for img in images]
        return _hstack(images, gap=self.gap(images))

    @staticmethod
    def gap(images) -> int:
        return max(2, images[0].shape[0] // 12)

    def outlines(self, spans: list[tuple[float, float]]) -> list[tuple[str, str, np.ndarray]]:
        """Voxel-edge outlines of every ROI in one tile's pixel coordinates: ``(name, colour, (n, 2, 2) segments)``."""
        out = []
        for i, (name, roi) in enumerate(sorted(self.rois.items())):
            segments = []
            for (index, axes), (left, _) in zip(self._panels(), spans):
                segs = _edges(self._scaled(roi[index], axes))
                if segs.size:
                    segs[:, :, 0] += left
                    segments.append(segs)
            if segments:
                out.append((name, OUTLINE_COLOURS[i % len(OUTLINE_COLOURS)], np.concatenate(segments)))
        return out


def evenly_spaced(lo: int, hi: int, n: int) -> list[int]:
    """``n`` slice indices in ``[lo, hi)`` one fixed step apart, centred in the range (fewer if it is short)."""
    extent = hi - lo
    if extent <= n:
        return list(range(lo, hi))
    step = max(1, extent // (n + 1))
    start = lo + (extent - 1 - step * (n - 1)) // 2
    return [start + step * i for i in range(n)]


def _edges(region: np.ndarray) -> np.ndarray:
    """Boundary of a 2-D boolean ``(w, h)`` region as unit segments between pixels.

    Returns ``(n, 2, 2)``: ((x0, y0), (x1, y1)) per segment.
    """
    if not region.any():
        return np.zeros((0, 2, 2))
    padded = np.pad(region, 1)
    vi, vj = np.nonzero(padded[1:, 1:-1] != padded[:-1, 1:-1])  # between x = i - 1 and i, at x = i
    hi, hj = np.nonzero(padded[1:-1, 1:] != padded[1:-1, :-1])  # between y = j - 1 and j, at y = j
    vertical = np.stack([np.stack([vi, vj], -1), np.stack([vi, vj + 1], -1)], 1)
    horizontal = np.stack([np.stack([hi, hj], -1), np.stack([hi + 1, hj], -1)], 1)
    return np.concatenate([vertical, horizontal]).astype(float)


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


def _hstack(images: list[np.ndarray], gap: int) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """``(w_i, h_i, 3)`` images side by side, bottom-aligned, white gaps; returns the row and the spans."""
    height = max(img.shape[1] for img in images)
    width = sum(img.shape[0] for img in images) + gap * (len(images) - 1)
    row = np.ones((width, height, 3))
    spans, left = [], 0
    for img in images:
        row[left : left + img.shape[0], : img.shape[1]] = img
        spans.append((left, img.shape[0]))
        left += img.shape[0] + gap
    return row, spans


# --------------------------------------------------------------------------- fsaverage5 flat


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
        return _hstack(images, gap=images[0].shape[1] // 20)


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


# --------------------------------------------------------------------------- pycortex


class PycortexCanvas:
    """pycortex quickflat images of the participant's own cortex (curvature underneath)."""

    def __init__(self, data: ParticipantOutputs, view: BrainView):
        self.data, self.view = data, view
        self.header = [f"pycortex flatmap of {view.pycortex_subject} ({view.pycortex_xfm})"]
        self.letters = [("", "")]

    def tile(self, spec: MapSpec, cmap, norm) -> tuple[np.ndarray, list[tuple[float, float]]]:
        """The quickflat figure of one map (voxels not shown are NaN, so the curvature shows), as RGB."""
        import cortex

        vol = to_volume(np.where(spec.shown, spec.values, np.nan), self.data.mask, fill=np.nan)
        braindata = cortex.Volume(
            vol.T, self.view.pycortex_subject, self.view.pycortex_xfm, vmin=norm.vmin, vmax=norm.vmax, cmap=cmap.name
        )
        fig = cortex.quickflat.make_figure(
            braindata,
            with_rois=False,
            with_labels=False,
            with_sulci=False,
            with_curvature=True,
            with_colorbar=False,
            height=600,
        )
        fig.canvas.draw()
        rgb = np.asarray(fig.canvas.buffer_rgba())[::-1, :, :3].transpose(1, 0, 2) / 255.0
        plt.close(fig)
        return rgb, [(0, rgb.shape[0])]


# --------------------------------------------------------------------------- figures


def slice_background(data: ParticipantOutputs) -> tuple[np.ndarray | None, str]:
    """The anatomy under a participant's slices, on the maps' grid, and a sentence saying what it is.

    The participant's preprocessed T1w in the maps' space from the fMRIPrep
    folder the maps came from (:func:`~bids_taskenc.report.inputs.find_anatomy`);
    in an MNI space without one, nilearn's bundled MNI152 template (ICBM152
    2009a asymmetric, close to but not fMRIPrep's 2009c). Resampled once
    (nilearn ``resample_to_img``, continuous). None and the reason otherwise.
    """
    path, where = find_anatomy(data)
    if path is None and not is_template_space(data.space):
        return None, f"grey is the brain mask: no anatomical image ({where})"
    from nilearn.image import resample_to_img

    if path is not None:
        source, text = nib.load(path), where
    else:
        from nilearn.datasets import load_mni152_template

        source = load_mni152_template()
        text = (
            f"nilearn's bundled MNI152 template (ICBM152 2009a asymmetric; space {data.space} is an MNI "
            f"template and {where})"
        )
    try:
        img = source if source.ndim == 3 else source.slicer[..., 0]
        resampled = resample_to_img(
            img, data.mask_img, interpolation="continuous", force_resample=True, copy_header=True
        )
    except Exception as exc:  # a broken anatomical file must not cost the report
        log.warning(
            "sub-%s: cannot resample the anatomy %s to the maps' grid (%s); slices without it",
            data.participant,
            path or "MNI152 template",
            exc,
        )
        return None, f"grey is the brain mask: the anatomy could not be resampled ({type(exc).__name__}: {exc})"
    return np.asarray(
        resampled.dataobj, dtype=np.float32
    ), f"over {text}, resampled to the maps' grid; paler outside the analysed voxels"


class BrainRenderer:
    """Draws maps with the chosen view; the canvas is built once, lazily.

    ``data`` is a participant's :class:`ParticipantOutputs` or the group's
    :class:`~bids_taskenc.report.inputs.GroupMaps`: anything with ``mask_img``,
    ``mask`` and ``volume(values)``. ``underlay`` (an array on the mask's
    grid) and ``rois`` (``{name: (n_voxels,) bool}``) are drawn under and over
    slices. A pycortex drawing that raises falls back to :func:`fallback_view`
    (``view`` then holds the new view and why).
    """

    def __init__(
        self,
        data: ParticipantOutputs,
        view: BrainView,
        cut_index: int | None = None,
        *,
        underlay: np.ndarray | None = None,
        rois: dict[str, np.ndarray] | None = None,
    ):
        self.data, self.view, self.cut_index = data, view, cut_index
        self.underlay, self.rois = underlay, rois
        self._canvas = None

    @property
    def canvas(self):
        if self._canvas is None:
            if self.view.kind == "slices":
                self._canvas = SliceCanvas(self.data.mask_img, self.cut_index, underlay=self.underlay, rois=self.rois)
            elif self.view.kind == "flat":
                self._canvas = _flat_canvas()
            else:
                self._canvas = PycortexCanvas(self.data, self.view)
        return self._canvas

    def _sample(self, specs: list[MapSpec]) -> None:
        """Give every spec without surface values its vol_to_surf samples (one batch)."""
        todo = [s for s in specs if s.surface is None]
        if not todo:
            return
        volumes = [self.data.volume(s.values) for s in todo] + [
            self.data.volume(s.shown.astype(np.float32)) for s in todo
        ]
        sampled = sample_to_fsaverage5(volumes, self.data.mask_img)
        for i, spec in enumerate(todo):
            spec.surface = sampled[i]
            spec.surface_shown = {h: sampled[len(todo) + i][h] > 0.5 for h in ("L", "R")}

    def _tiles(self, specs: list[MapSpec]):
        if self.view.kind == "flat":
            self._sample(specs)
        return [
            self.canvas.tile(spec, plt.get_cmap(spec.cmap), mcolors.Normalize(spec.vmin, spec.vmax, clip=True))
            for spec in specs
        ]

    def figure(self, specs: list[MapSpec], path: Path, *, title: str) -> Path:
        """One PNG with a row per map and a colour bar per colour scale (one when all rows share theirs)."""
        if self.view.kind == "pycortex":
            try:
                tiles = self._tiles(specs)
            except Exception as exc:  # pycortex raises many types (shape mismatch, missing files, ...)
                old = self.view
                self.view, self._canvas = fallback_view(self.data, old, exc), None
                log.warning(
                    "sub-%s: pycortex flatmap failed for subject %s, transform %s (%s: %s); drawing %s instead",
                    getattr(self.data, "participant", "?"),
                    old.pycortex_subject,
                    old.pycortex_xfm,
                    type(exc).__name__,
                    exc,
                    self.view.kind,
                )
                return self.figure(specs, path, title=title)
        else:
            tiles = self._tiles(specs)
        return _draw_rows(tiles, specs, self.canvas, path, title=title)


@lru_cache(maxsize=1)
def _flat_canvas() -> FlatCanvas:
    """The fsaverage5 rasters, built once per process (they never change)."""
    return FlatCanvas()


def _scale(spec: MapSpec) -> tuple:
    return spec.cmap, float(spec.vmin), float(spec.vmax), spec.label


@dataclass
class _Rows:
    """Row tiles stacked on one canvas: the RGB image ``(width, height, 3)``, the texts, and each row's place.

    ``texts`` are ``(x, y, text, ha, size, colour, weight[, va])`` in pixels; ``rows`` are ``(bottom, height)``;
    ``outlines`` the canvas's ``(roi, colour, segments)`` and ``segments`` each ROI's segments over every row.
    """

    image: np.ndarray
    texts: list[tuple]
    rows: list[tuple[int, int]]
    outlines: list
    segments: dict[str, list]

    @property
    def width(self) -> int:
        return self.image.shape[0]

    @property
    def height(self) -> int:
        return self.image.shape[1]


def _draw_rows(tiles, specs: list[MapSpec], canvas, path: Path, *, title: str) -> Path:
    """Stack row tiles on one white canvas with a title above each row; one imshow.

    One colour bar when every row has the same colour scale, else one beside
    each row. Orientation letters: horizontal ones in the header, vertical
    ones at the panels' top and bottom in the first row. ROI outlines (slices)
    are drawn on every row, one line collection per ROI, with a legend.
    """
    stacked = _stack_rows(tiles, specs, canvas)
    shared = len({_scale(s) for s in specs}) == 1
    inches_w = 9.8
    inches_h = max(1.6, inches_w * stacked.height / stacked.width)
    fig_w = inches_w + (1.2 if shared else 1.5) + (1.1 if stacked.outlines and not shared else 0.0)
    fig_h = inches_h + 0.45
    fig = plt.figure(figsize=(fig_w, fig_h))
    _draw_canvas(fig.add_axes([0.0, 0.0, inches_w / fig_w, inches_h / fig_h]), stacked)
    bars = _colour_bars(fig, stacked, specs, shared, (inches_w, inches_h))
    if stacked.outlines:
        handles = [Line2D([], [], color=colour, linewidth=2) for _, colour, _ in stacked.outlines]
        if shared:  # under the colour bar
            anchor = ((inches_w + 0.05) / fig_w, (bars[-1][0] - 0.15) / fig_h)
        else:  # right of the colour bars
            anchor = ((inches_w + 1.45) / fig_w, (inches_h - 0.1) / fig_h)
        legend = fig.legend(
            handles,
            [name for name, _, _ in stacked.outlines],
            loc="upper left",
            fontsize=7,
            title="ROI outlines",
            title_fontsize=7,
            frameon=True,
            bbox_to_anchor=anchor,
        )
        legend.get_frame().set_facecolor("#777777")
    fig.suptitle(title, fontsize=11, y=1.0, va="top")
    return save(fig, path, tight=False)


def _stack_rows(tiles, specs: list[MapSpec], canvas) -> _Rows:
    """The header (panel names, orientation letters), then per row its title and its tile, top to bottom."""
    width = max(t[0].shape[0] for t in tiles)
    label_h = max(6, int(0.09 * max(t[0].shape[1] for t in tiles)))
    header_h = label_h
    heights = [t[0].shape[1] + label_h for t in tiles]
    height = sum(heights) + header_h
    image = np.ones((width, height, 3))
    texts = []
    top = height
    spans = tiles[0][1]
    inside_letters = hasattr(canvas, "vletters")  # slices: all four letters inside the first row's panels
    for name, (left, w), (a, b) in zip(canvas.header, spans, canvas.letters):
        texts.append((left + w / 2, top - header_h * 0.5, name, "center", 8, "black", "normal"))
        if not inside_letters:
            texts.append((left, top - header_h * 0.5, a, "left", 8, "#555555", "bold"))
            texts.append((left + w, top - header_h * 0.5, b, "right", 8, "#555555", "bold"))
    top -= header_h
    rows = []  # (bottom, row height) in pixels
    outlines = canvas.outlines(spans) if hasattr(canvas, "outlines") else []
    segments: dict[str, list] = {name: [] for name, _, _ in outlines}
    for i, ((rgb, _), spec, row_h) in enumerate(zip(tiles, specs, heights)):
        texts.append(
            (0, top - label_h * 0.45, spec.title, "left", 9, group_color(spec.group) if spec.group else "black", "bold")
        )
        bottom = top - row_h
        image[: rgb.shape[0], bottom : bottom + rgb.shape[1]] = rgb
        if i == 0 and inside_letters:
            for (left, w), (low, high), (a, b), img_h in zip(
                spans, canvas.vletters, canvas.letters, canvas.panel_heights
            ):
                mid = bottom + img_h / 2
                texts += [
                    (left + 0.5, mid, a, "left", 7, "white", "bold", "center"),
                    (left + w - 0.5, mid, b, "right", 7, "white", "bold", "center"),
                    (left + w / 2, bottom + img_h - 0.5, high, "center", 7, "white", "bold", "top"),
                    (left + w / 2, bottom + 0.5, low, "center", 7, "white", "bold", "bottom"),
                ]
        for name, _, segs in outlines:
            shifted = segs.copy()
            shifted[:, :, 1] += bottom
            segments[name].append(shifted)
        rows.append((bottom, row_h))
        top = bottom
    return _Rows(image, texts, rows, outlines, segments)


def _draw_canvas(ax, stacked: _Rows) -> None:
    """The stacked image, the ROI outlines and the texts (white ones with a black edge) on one axes."""
    width, height = stacked.width, stacked.height
    ax.imshow(stacked.image.transpose(1, 0, 2), origin="lower", interpolation="nearest", extent=(0, width, 0, height))
    for name, colour, _ in stacked.outlines:
        ax.add_collection(LineCollection(np.concatenate(stacked.segments[name]), colors=colour, linewidths=1.0))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_axis_off()
    outline = [patheffects.withStroke(linewidth=1.5, foreground="black")]
    for x, y, text, ha, size, colour, weight, *va in stacked.texts:
        if text:
            ax.text(
                x,
                y,
                text,
                ha=ha,
                va=va[0] if va else "center",
                fontsize=size,
                color=colour,
                weight=weight,
                path_effects=outline if colour == "white" else None,
            )


def _colour_bars(fig, stacked: _Rows, specs: list[MapSpec], shared: bool, inches: tuple[float, float]) -> list:
    """One colour bar at the top (all rows share a scale) or one beside each row; ``(y0, height, spec)`` in inches."""
    inches_w, inches_h = inches
    fig_w, fig_h = fig.get_size_inches()
    px_h = inches_h / stacked.height  # inches per pixel row
    if shared:
        bar_h = min(3.0, 0.8 * inches_h)  # inches, from the top of the maps: visible without scrolling
        bars = [((inches_h - 0.2 - bar_h), bar_h, specs[0])]
    else:
        bars = [
            (bottom * px_h + 0.1 * row_h * px_h, 0.75 * row_h * px_h, spec)
            for (bottom, row_h), spec in zip(stacked.rows, specs)
        ]
    for y0, h, spec in bars:
        cax = fig.add_axes([(inches_w + 0.3) / fig_w, y0 / fig_h, 0.15 / fig_w, h / fig_h])
        norm = mcolors.Normalize(spec.vmin, spec.vmax, clip=True)
        bar = fig.colorbar(ScalarMappable(norm, plt.get_cmap(spec.cmap)), cax=cax)
        bar.set_label(spec.label, fontsize=8 if shared else 7)
        bar.ax.tick_params(labelsize=7)
    return bars
