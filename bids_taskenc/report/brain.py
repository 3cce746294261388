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
of one kind share one colour scale, maps of different kinds (noise ceiling, a
fraction; split-half r, diverging) get one each; every row has its colour
bar beside it. Flat maps interpolate the vertex values inside each face,
mark each hemisphere's anterior and posterior ends, and outline the ROIs
(sampled onto fsaverage5 like the maps). Everything runs headless
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
import numpy as np  # noqa: E402
from matplotlib import colors as mcolors  # noqa: E402
from matplotlib.colors import Colormap, Normalize  # noqa: E402

from bids_taskenc.core.masks import to_volume  # noqa: E402
from bids_taskenc.report.flat import FlatCanvas, FlatRegions, sample_to_fsaverage5  # noqa: E402
from bids_taskenc.report.groupinputs import GroupMaps  # noqa: E402
from bids_taskenc.report.inputs import FLAT_SPACE, ParticipantOutputs, find_anatomy  # noqa: E402
from bids_taskenc.report.rows import draw_rows  # noqa: E402
from bids_taskenc.report.slices import SliceCanvas, evenly_spaced  # noqa: E402
from bids_taskenc.report.tiles import MASK_GREY, OUTLINE_COLOURS, MapSpec, edges, shared_vmax  # noqa: E402

from ..core.images import load_volume

__all__ = [
    "MASK_GREY",
    "OUTLINE_COLOURS",
    "BrainRenderer",
    "BrainView",
    "FlatCanvas",
    "MapSpec",
    "SliceCanvas",
    "choose_group_view",
    "choose_view",
    "edges",
    "evenly_spaced",
    "fallback_view",
    "find_pycortex_subject",
    "is_template_space",
    "sample_to_fsaverage5",
    "shared_vmax",
    "slice_background",
    "volume_view",
]

log = logging.getLogger(__name__)

#: ``space-`` prefixes of volumetric MNI templates that fsaverage5 is registered to.
TEMPLATE_PREFIXES = ("MNI152", "MNI305", "MNIColin27")


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
    return space is not None and space.startswith(TEMPLATE_PREFIXES)


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


# --------------------------------------------------------------------------- pycortex


class PycortexCanvas:
    """pycortex quickflat images of the participant's own cortex (curvature underneath)."""

    def __init__(self, data: ParticipantOutputs, view: BrainView):
        self.data, self.view = data, view
        self.header = [f"pycortex flatmap of {view.pycortex_subject} ({view.pycortex_xfm})"]
        self.letters = [("", "")]

    def tile(self, spec: MapSpec, cmap: Colormap, norm: Normalize) -> tuple[np.ndarray, list[tuple[int, int]]]:
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
        source, text = load_volume(path), where
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
    grid) is drawn under slices; ``rois`` (``{name: (n_voxels,) bool}``) are
    outlined over slices and, sampled onto fsaverage5 like the maps, over flat
    maps. A pycortex drawing that raises falls back to :func:`fallback_view`
    (``view`` then holds the new view and why).
    """

    def __init__(
        self,
        data: ParticipantOutputs | GroupMaps,
        view: BrainView,
        cut_index: int | None = None,
        *,
        underlay: np.ndarray | None = None,
        rois: dict[str, np.ndarray] | None = None,
    ):
        self.data, self.view, self.cut_index = data, view, cut_index
        self.underlay, self.rois = underlay, rois
        self._canvas: Canvas | None = None

    @property
    def canvas(self) -> Canvas:
        if self._canvas is None:
            if self.view.kind == "slices":
                self._canvas = SliceCanvas(self.data.mask_img, self.cut_index, underlay=self.underlay, rois=self.rois)
            elif self.view.kind == "flat":
                flat = _flat_canvas()
                self._canvas = flat.regions(self._roi_surfaces(self.rois)) if self.rois else flat
                if flat.orientation not in self.view.description:
                    self.view.description += f"; {flat.orientation}"
            else:
                self._canvas = PycortexCanvas(self._participant(), self.view)
        return self._canvas

    def _participant(self) -> ParticipantOutputs:
        """The participant whose own cortex pycortex draws (the group maps have none)."""
        if not isinstance(self.data, ParticipantOutputs):
            raise TypeError(f"pycortex draws a participant's maps, not {type(self.data).__name__}")
        return self.data

    def _roi_surfaces(self, rois: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
        """The ROI masks sampled onto fsaverage5 as the maps are (vol_to_surf): a vertex is in where >= half is."""
        names = sorted(rois)
        sampled = sample_to_fsaverage5(
            [self.data.volume(np.asarray(rois[n], dtype=np.float32)) for n in names], self.data.mask_img
        )
        return {n: {h: np.nan_to_num(s[h]) >= 0.5 for h in ("L", "R")} for n, s in zip(names, sampled)}

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

    def _tiles(self, specs: list[MapSpec]) -> list[tuple[np.ndarray, list[tuple[int, int]]]]:
        if self.view.kind == "flat":
            self._sample(specs)
        return [
            self.canvas.tile(spec, plt.get_cmap(spec.cmap), mcolors.Normalize(spec.vmin, spec.vmax, clip=True))
            for spec in specs
        ]

    def figure(self, specs: list[MapSpec], path: Path, *, title: str) -> Path:
        """One PNG with a row per map, each with its colour bar."""
        if self.view.kind == "pycortex":
            try:
                tiles = self._tiles(specs)
            except Exception as exc:  # pycortex raises many types (shape mismatch, missing files, ...)
                old = self.view
                self.view, self._canvas = fallback_view(self._participant(), old, exc), None
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
        return draw_rows(tiles, specs, self.canvas, path, title=title)


#: What a view draws tiles with.
Canvas = SliceCanvas | FlatCanvas | FlatRegions | PycortexCanvas


@lru_cache(maxsize=1)
def _flat_canvas() -> FlatCanvas:
    """The fsaverage5 rasters, built once per process (they never change)."""
    return FlatCanvas()
