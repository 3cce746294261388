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
   shared by every map of a report, plus an axial mosaic).

Each view turns a :class:`MapSpec` (values over the brain-mask voxels, which
voxels to colour, colour scale) into an RGB *tile* (a numpy array); a figure
stacks the tiles of several maps (one row each: all feature spaces in one
picture, as the paper's Fig. 2) under one colour bar and is drawn with a single
``imshow``. Everything runs headless (Agg) and offline. Slices and flat maps
are rasterised with numpy, not drawn with ``nilearn.plotting`` or
``plot_surf``: those cost seconds of import (scikit-learn) and 0.4-2 s per
map, which every participant run would pay, and the outputs hold no
anatomical image to draw under slices anyway.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import colors as mcolors  # noqa: E402
from matplotlib.cm import ScalarMappable  # noqa: E402

from bids_taskenc.report.figures import group_color, save  # noqa: E402
from bids_taskenc.report.inputs import FLAT_SPACE, ParticipantOutputs  # noqa: E402

#: ``space-`` prefixes of volumetric MNI templates that fsaverage5 is registered to.
TEMPLATE_PREFIXES = ("MNI152", "MNI305", "MNIColin27")

#: Grey of in-brain voxels that are not coloured; white is outside the brain.
MASK_GREY = 0.80


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


def is_template_space(space: str | None) -> bool:
    """True for volumetric MNI template spaces (``MNI152NLin2009cAsym`` ...)."""
    return bool(space) and space.startswith(TEMPLATE_PREFIXES)


# --------------------------------------------------------------------------- choosing


def find_pycortex_subject(participant: str, requested: str | None = None,
                          xfm: str | None = None) -> tuple[str | None, str | None, str]:
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
        return None, None, ("pycortex is not installed (optional: pip install 'bids_taskenc[flatmaps]', "
                            "needs a C compiler)")
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
            return None, None, (f"pycortex subject {subject} has {len(transforms)} transforms "
                                f"({', '.join(transforms) or 'none'}); name one with --pycortex-xfm")
        xfm = transforms[0]
    elif xfm not in transforms:
        return None, None, f"pycortex subject {subject} has no transform {xfm!r} ({', '.join(transforms) or 'none'})"
    how = "given by --pycortex-subject" if requested else "found in the pycortex filestore"
    return subject, xfm, f"pycortex subject {subject} ({how}), transform {xfm}"


_FLAT_DESCRIPTION = (f"flat maps of both hemispheres on nilearn's bundled {FLAT_SPACE} flat meshes, "
                     "sulci dark and gyri light grey underneath, pale where the maps have no data")
_SLICES_DESCRIPTION = ("orthogonal slices (sagittal, coronal, axial) through one cut shared by every map, "
                       "and an axial mosaic; grey is the {mask}, there is no anatomical background")


def choose_view(data: ParticipantOutputs, *, pycortex_subject: str | None = None,
                pycortex_xfm: str | None = None) -> BrainView:
    """Pick the brain picture for one participant's maps (see the module docstring for the order)."""
    subject, xfm, message = find_pycortex_subject(data.participant, pycortex_subject, pycortex_xfm)
    if subject is not None:
        return BrainView(
            "pycortex", f"pycortex flatmaps of {subject}'s cortex (quickflat, curvature background)",
            f"a pycortex subject exists for this participant: {message}.",
            pycortex_subject=subject, pycortex_xfm=xfm)
    not_pycortex = f"No pycortex flatmap: {message}."
    first = data.features[0].label if data.features else None
    if first is not None and data.surface_map(first, "r") is not None:
        return BrainView(
            "flat", _FLAT_DESCRIPTION,
            f"the participant level wrote {FLAT_SPACE} GIFTI maps (space {data.space} is a template), "
            f"drawn here as they are. {not_pycortex}", source="gifti")
    if is_template_space(data.space):
        return BrainView(
            "flat", _FLAT_DESCRIPTION,
            f"space {data.space} is an MNI template, to which {FLAT_SPACE} is registered; no {FLAT_SPACE} "
            "GIFTI maps were found, so the volume was sampled onto the surface here "
            f"(nilearn vol_to_surf, white-to-pial line). {not_pycortex}", source="vol_to_surf")
    return BrainView(
        "slices", _SLICES_DESCRIPTION.format(mask="brain mask"),
        f"space {data.space} is the participant's own, so no template surface applies, and the outputs "
        f"hold no anatomical image. {not_pycortex}")


def choose_group_view(space: str) -> BrainView:
    """The brain picture of the group maps: fsaverage5 flat maps for an MNI template, else slices.

    pycortex is not offered: its subjects are individual brains, the group maps are not.
    """
    if is_template_space(space):
        return BrainView(
            "flat", _FLAT_DESCRIPTION,
            f"space {space} is an MNI template, to which {FLAT_SPACE} is registered; the group volume "
            "was sampled onto the surface here (nilearn vol_to_surf, white-to-pial line).",
            source="vol_to_surf")
    return BrainView(
        "slices", _SLICES_DESCRIPTION.format(mask="group mask"),
        f"space {space} is not an MNI template, so no template surface applies.")


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
        Axial slices after the three planes.
    """

    def __init__(self, mask_img: nib.Nifti1Image, cut_index: int | None = None, n_axial: int = 5):
        mask = np.asarray(mask_img.dataobj) > 0
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
        if cut_index is None:
            centre = ijk.mean(axis=0)
            self.cut = ijk[np.argmin(((ijk - centre) ** 2).sum(axis=1))]
        else:
            self.cut = np.argwhere(self.index == int(cut_index))[0]
        zs = np.linspace(self.lo[2], self.hi[2] - 1, n_axial + 2)[1:-1]
        self.axial = [int(k) for k in np.unique(np.rint(zs).astype(int)) if k != self.cut[2]]
        mm = nib.affines.apply_affine(self.affine, self.cut)
        self.header = [f"sagittal x={mm[0]:.0f}", f"coronal y={mm[1]:.0f}", f"axial z={mm[2]:.0f}"]
        self.header += [f"z={nib.affines.apply_affine(self.affine, [0, 0, k])[2]:.0f}" for k in self.axial]
        self.letters = [("P", "A"), ("L", "R"), ("L", "R")] + [("", "")] * len(self.axial)

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
        out = [(np.s_[x, lo[1]:hi[1], lo[2]:hi[2]], (1, 2)), (np.s_[lo[0]:hi[0], y, lo[2]:hi[2]], (0, 2)),
               (np.s_[lo[0]:hi[0], lo[1]:hi[1], z], (0, 1))]
        return out + [(np.s_[lo[0]:hi[0], lo[1]:hi[1], k], (0, 1)) for k in self.axial]

    def tile(self, spec: MapSpec, cmap, norm) -> tuple[np.ndarray, list[tuple[float, float]]]:
        """One map as a row of panels: RGB ``(width, height, 3)`` and each panel's (left, width) in pixels."""
        vals = self.volume(spec.values)
        shown = self.volume(spec.shown.astype(float)) > 0.5
        images = []
        for index, axes in self._panels():
            img = _rgb(vals[index], self.mask[index], shown[index], cmap, norm)
            for dim, axis in enumerate(axes):
                img = np.repeat(img, self.factors[axis], axis=dim) if self.factors[axis] > 1 else img
            images.append(img)
        return _hstack(images, gap=max(2, images[0].shape[0] // 12))


def _rgb(values, inside, shown, cmap, norm) -> np.ndarray:
    """``(a, b)`` slice -> ``(a, b, 3)`` image: white outside, grey inside, colour where shown."""
    rgb = np.ones(values.shape + (3,))
    rgb[inside] = MASK_GREY
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
        row[left:left + img.shape[0], :img.shape[1]] = img
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
    stack = nib.Nifti1Image(np.stack([np.asarray(v.dataobj, dtype=np.float32) for v in volumes], axis=-1),
                            volumes[0].affine)
    out = [dict() for _ in volumes]
    for hemi, part in (("L", "left"), ("R", "right")):
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = vol_to_surf(stack, fs["pial"].parts[part], inner_mesh=fs["white_matter"].parts[part],
                                 mask_img=mask_img, interpolation="linear")
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

        vol = np.full(self.data.mask.shape, np.nan, dtype=np.float32)
        vol[self.data.mask] = np.where(spec.shown, spec.values, np.nan)
        braindata = cortex.Volume(vol.T, self.view.pycortex_subject, self.view.pycortex_xfm,
                                  vmin=norm.vmin, vmax=norm.vmax, cmap=cmap.name)
        fig = cortex.quickflat.make_figure(braindata, with_rois=False, with_labels=False, with_sulci=False,
                                           with_curvature=True, with_colorbar=False, height=600)
        fig.canvas.draw()
        rgb = np.asarray(fig.canvas.buffer_rgba())[::-1, :, :3].transpose(1, 0, 2) / 255.0
        plt.close(fig)
        return rgb, [(0, rgb.shape[0])]


# --------------------------------------------------------------------------- figures


class BrainRenderer:
    """Draws maps with the chosen view; the canvas is built once, lazily.

    ``data`` is a participant's :class:`ParticipantOutputs` or the group's
    :class:`~bids_taskenc.report.inputs.GroupMaps`: anything with ``mask_img``,
    ``mask`` and ``volume(values)``.
    """

    def __init__(self, data: ParticipantOutputs, view: BrainView, cut_index: int | None = None):
        self.data, self.view, self.cut_index = data, view, cut_index
        self._canvas = None

    @property
    def canvas(self):
        if self._canvas is None:
            if self.view.kind == "slices":
                self._canvas = SliceCanvas(self.data.mask_img, self.cut_index)
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
            self.data.volume(s.shown.astype(np.float32)) for s in todo]
        sampled = sample_to_fsaverage5(volumes, self.data.mask_img)
        for i, spec in enumerate(todo):
            spec.surface = sampled[i]
            spec.surface_shown = {h: sampled[len(todo) + i][h] > 0.5 for h in ("L", "R")}

    def figure(self, specs: list[MapSpec], path: Path, *, title: str) -> Path:
        """One PNG with a row per map (all on the first spec's colour scale) and one colour bar."""
        if self.view.kind == "flat":
            self._sample(specs)
        cmap = plt.get_cmap(specs[0].cmap)
        norm = mcolors.Normalize(specs[0].vmin, specs[0].vmax, clip=True)
        tiles = [self.canvas.tile(spec, cmap, norm) for spec in specs]
        return _draw_rows(tiles, specs, self.canvas, cmap, norm, path, title=title)


@lru_cache(maxsize=1)
def _flat_canvas() -> FlatCanvas:
    """The fsaverage5 rasters, built once per process (they never change)."""
    return FlatCanvas()


def _draw_rows(tiles, specs: list[MapSpec], canvas, cmap, norm, path: Path, *, title: str) -> Path:
    """Stack row tiles on one white canvas with a title above each row; one imshow, one colour bar."""
    width = max(t[0].shape[0] for t in tiles)
    label_h = max(6, int(0.09 * max(t[0].shape[1] for t in tiles)))
    header_h = label_h
    heights = [t[0].shape[1] + label_h for t in tiles]
    height = sum(heights) + header_h
    image = np.ones((width, height, 3))
    texts = []
    top = height
    spans = tiles[0][1]
    for name, (left, w), (a, b) in zip(canvas.header, spans, canvas.letters):
        texts.append((left + w / 2, top - header_h * 0.5, name, "center", 8, "black", "normal"))
        texts.append((left, top - header_h * 0.5, a, "left", 8, "#555555", "bold"))
        texts.append((left + w, top - header_h * 0.5, b, "right", 8, "#555555", "bold"))
    top -= header_h
    for (rgb, _), spec, row_h in zip(tiles, specs, heights):
        texts.append((0, top - label_h * 0.45, spec.title, "left", 9,
                      group_color(spec.group) if spec.group else "black", "bold"))
        bottom = top - row_h
        image[:rgb.shape[0], bottom:bottom + rgb.shape[1]] = rgb
        top = bottom
    inches_w = 9.8
    inches_h = max(1.6, inches_w * height / width)
    fig_w, fig_h = inches_w + 1.2, inches_h + 0.45
    fig = plt.figure(figsize=(fig_w, fig_h))
    ax = fig.add_axes([0.0, 0.0, inches_w / fig_w, inches_h / fig_h])
    ax.imshow(image.transpose(1, 0, 2), origin="lower", interpolation="nearest", extent=(0, width, 0, height))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_axis_off()
    for x, y, text, ha, size, colour, weight in texts:
        if text:
            ax.text(x, y, text, ha=ha, va="center", fontsize=size, color=colour, weight=weight)
    bar_h = min(3.0, 0.8 * inches_h)  # inches, from the top of the maps: visible without scrolling
    cax = fig.add_axes([(inches_w + 0.3) / fig_w, (inches_h - 0.2 - bar_h) / fig_h, 0.15 / fig_w, bar_h / fig_h])
    fig.colorbar(ScalarMappable(norm, cmap), cax=cax, label=specs[0].label)
    fig.suptitle(title, fontsize=11, y=1.0, va="top")
    return save(fig, path, tight=False)

