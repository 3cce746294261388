"""Find the cortical surfaces a participant's volume maps can be projected onto.

Two sources, tried in order by :func:`find_surfaces`:

* template spaces (``MNI152*``): fsaverage5 pial and white meshes, from the
  templateflow cache when it holds ``tpl-fsaverage`` at ``den-10k`` (never
  downloaded here), else nilearn's bundled copy;
* ``T1w``: the participant's own surfaces from fMRIPrep, with modern names
  (``sub-X_hemi-L_pial.surf.gii`` + ``_white`` or ``_smoothwm``) or fMRIPrep
  1.x names as in BOLD5000's release (``sub-CSI1_T1w_pial.L.surf.gii`` +
  ``_smoothwm``).

Anything else returns ``None`` with the reason, which the caller logs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: Output-space prefixes treated as MNI templates (fsaverage5 is registered to MNI space).
TEMPLATE_PREFIXES = ("MNI152", "MNI305", "MNIColin27", "MNIInfant", "MNIPediatric")
HEMIS = {"L": "left", "R": "right"}


@dataclass
class SurfaceSet:
    """Outer (pial) and inner (white) meshes per hemisphere, and where they came from.

    Attributes
    ----------
    space : str
        ``space-`` label of the surface outputs (``fsaverage5`` or ``fsnative``).
    pial, white : dict {'L', 'R'} -> mesh
        A path to a GIFTI file or a nilearn mesh object.
    source : str
        Human-readable origin, for sidecars and logs.
    """

    space: str
    pial: dict
    white: dict
    source: str


def _templateflow_home() -> Path:
    return Path(os.environ.get("TEMPLATEFLOW_HOME", Path.home() / ".cache" / "templateflow"))


def fsaverage5_surfaces() -> SurfaceSet:
    """fsaverage5 meshes: templateflow's cache when it has them, else nilearn's bundled ones."""
    tpl = _templateflow_home() / "tpl-fsaverage"
    pial = {h: tpl / f"tpl-fsaverage_hemi-{h}_den-10k_pial.surf.gii" for h in HEMIS}
    white = {h: tpl / f"tpl-fsaverage_hemi-{h}_den-10k_white.surf.gii" for h in HEMIS}
    if all(p.is_file() and p.stat().st_size > 0 for p in (*pial.values(), *white.values())):
        return SurfaceSet("fsaverage5", pial, white, f"templateflow cache {tpl}")
    from nilearn import datasets

    fs = datasets.load_fsaverage("fsaverage5")
    return SurfaceSet(
        "fsaverage5",
        {h: fs["pial"].parts[side] for h, side in HEMIS.items()},
        {h: fs["white_matter"].parts[side] for h, side in HEMIS.items()},
        "nilearn's bundled fsaverage5 meshes",
    )


def _participant_anat_dirs(derivative_roots: list[Path], subject: str) -> list[Path]:
    dirs = []
    for root in derivative_roots:
        sub = Path(root) / f"sub-{subject}"
        dirs += [d for d in [sub / "anat", *sorted(sub.glob("ses-*/anat"))] if d.is_dir()]
    return dirs


def native_surfaces(derivative_roots: list[Path], subject: str) -> SurfaceSet | None:
    """The participant's fMRIPrep pial and white (or smoothwm) surfaces, or None."""
    for anat in _participant_anat_dirs(derivative_roots, subject):
        for naming in ("modern", "legacy"):
            pial, white = {}, {}
            for h in HEMIS:
                if naming == "modern":
                    outer = sorted(anat.glob(f"sub-{subject}*_hemi-{h}_pial.surf.gii"))
                    inner = sorted(anat.glob(f"sub-{subject}*_hemi-{h}_white.surf.gii")) or sorted(
                        anat.glob(f"sub-{subject}*_hemi-{h}_smoothwm.surf.gii")
                    )
                else:
                    outer = sorted(anat.glob(f"sub-{subject}*_T1w_pial.{h}.surf.gii"))
                    inner = sorted(anat.glob(f"sub-{subject}*_T1w_smoothwm.{h}.surf.gii")) or sorted(
                        anat.glob(f"sub-{subject}*_T1w_white.{h}.surf.gii")
                    )
                if outer and inner:
                    pial[h], white[h] = outer[0], inner[0]
            if len(pial) == 2:
                return SurfaceSet("fsnative", pial, white, f"fMRIPrep surfaces in {anat}")
    return None


def find_surfaces(space: str, derivative_roots: list[Path], subject: str) -> tuple[SurfaceSet | None, str]:
    """Surfaces for maps in ``space``, and a sentence saying which or why none.

    Parameters
    ----------
    space : str
        The analysis space (``T1w``, ``MNI152NLin2009cAsym``, ...).
    derivative_roots : list of Path
        Roots of the preprocessed-data derivatives (fMRIPrep).
    subject : str
        Participant label without ``sub-``.
    """
    if space.startswith(TEMPLATE_PREFIXES):
        template = fsaverage5_surfaces()
        return template, f"space {space} is a template: projected onto fsaverage5 ({template.source})"
    if space == "T1w":
        surfaces = native_surfaces(derivative_roots, subject)
        if surfaces is None:
            return None, (
                f"space T1w but no fMRIPrep pial + white/smoothwm surfaces for sub-{subject} "
                f"under {', '.join(str(r) for r in derivative_roots) or 'no derivatives folder'}; "
                "no GIFTI maps written"
            )
        return surfaces, f"space T1w: projected onto the participant's own surfaces ({surfaces.source})"
    return None, f"space {space} is neither T1w nor an MNI template; no GIFTI maps written"
