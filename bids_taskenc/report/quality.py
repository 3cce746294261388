"""Quality numbers and warnings of a participant report (pure numpy on what the run wrote).

Thresholds are deliberately simple and printed in each warning, so a reader
can judge them; none of them changes an output.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bids_taskenc.report.inputs import ParticipantOutputs

#: A share of significant voxels this large at one end of the alpha grid means the grid is too narrow.
ALPHA_EDGE_FRACTION = 0.10
#: Fewer significant voxels than this (and than 0.1 % of the voxels) is "few".
FEW_SIGNIFICANT = 10
#: A 90th percentile of the noise ceiling below this is "low".
LOW_NOISE_CEILING = 0.10
#: Test sets smaller than this give r maps with a wide null distribution.
SMALL_TEST_SET = 50
#: Fewer repeated images than this make the noise-ceiling estimate itself noisy.
FEW_REPEATED = 20


@dataclass
class Finding:
    """One line of the report's warnings section. ``level`` is ``warning`` or ``note``."""

    level: str
    text: str


def alpha_edges(alpha: np.ndarray, grid: list[float], among: np.ndarray | None = None) -> tuple[float, float]:
    """Fractions of voxels whose chosen alpha is the smallest / the largest grid value.

    Parameters
    ----------
    alpha : ndarray, shape (n_voxels,)
    grid : list of float
        The alpha grid of the fit.
    among : ndarray of bool, shape (n_voxels,), optional
        Only these voxels (e.g. the significant ones).
    """
    a = np.asarray(alpha, dtype=float)
    if among is not None:
        a = a[among]
    a = a[np.isfinite(a) & (a > 0)]
    if not a.size or not grid:
        return float("nan"), float("nan")
    lo, hi = np.log10(min(grid)), np.log10(max(grid))
    la = np.log10(a)
    return float(np.mean(np.abs(la - lo) < 1e-6)), float(np.mean(np.abs(la - hi) < 1e-6))


def repeats_per_image(data: ParticipantOutputs) -> float | None:
    """Median number of presentations of the images shown more than once (from the split table)."""
    if data.split is None or "n_presentations" not in data.split:
        return None
    n = data.split["n_presentations"].to_numpy(dtype=float)
    n = n[n > 1]
    return float(np.median(n)) if n.size else None


def split_half_reliability(data: ParticipantOutputs) -> tuple[np.ndarray | None, str]:
    """Per-voxel split-half reliability of the responses, and how it was obtained.

    An empirical map (``desc-noise_stat-splithalf``) is used when the run wrote
    one. Otherwise it is derived from the noise-ceiling SNR the run wrote
    (``stat-ncsnr``, NSD's definition on z-scored responses): with signal
    variance ``s²``, noise variance ``n²`` and ``k`` presentations per repeated
    image, the means of two halves of ``k/2`` presentations correlate across
    images by ``s² / (s² + 2n²/k) = ncsnr² / (ncsnr² + 2/k)``.

    Returns
    -------
    (values over the brain voxels or None, a sentence for the report)
    """
    if data.splithalf is not None:
        return data.splithalf, "empirical split-half correlation written by the participant level"
    if data.ncsnr is None:
        return None, "not computed: the run wrote no noise-ceiling SNR (fewer than two repeated images)"
    k = repeats_per_image(data) or 2.0
    snr2 = np.asarray(data.ncsnr, dtype=float) ** 2
    values = snr2 / (snr2 + 2.0 / k)
    return values, (
        f"derived from the noise-ceiling SNR map (ncsnr² / (ncsnr² + 2/k), k = {k:g} presentations "
        "per repeated image): the expected correlation, across the repeated images, between the "
        "means of two halves of their presentations"
    )


def _fit_findings(data: ParticipantOutputs) -> list[Finding]:
    """Alphas at the grid's edges and feature spaces with few surviving voxels."""
    out: list[Finding] = []
    grid = data.first_sidecar.get("AlphaGrid") or []
    low_edge, high_edge = [], []
    few = []
    n_vox = int(data.mask.sum())
    for f in data.features:
        sig = f.significant
        if len(f.r) and sig.sum() < max(FEW_SIGNIFICANT, 0.001 * n_vox):
            few.append(f"{f.label} ({int(sig.sum())})")
        if f.alpha is not None and sig.any():
            lo, hi = alpha_edges(f.alpha, grid, sig)
            if lo >= ALPHA_EDGE_FRACTION:
                low_edge.append(f"{f.label} ({lo:.0%})")
            if hi >= ALPHA_EDGE_FRACTION:
                high_edge.append(f"{f.label} ({hi:.0%})")
    if low_edge:
        out.append(
            Finding(
                "warning",
                f"The smallest alpha of the grid ({min(grid):g}) was chosen by "
                f"≥ {ALPHA_EDGE_FRACTION:.0%} of the significant voxels of: "
                f"{', '.join(low_edge)}. The grid may be too narrow; extend --alphas "
                "downwards.",
            )
        )
    if high_edge:
        out.append(
            Finding(
                "warning",
                f"The largest alpha of the grid ({max(grid):g}) was chosen by "
                f"≥ {ALPHA_EDGE_FRACTION:.0%} of the significant voxels of: "
                f"{', '.join(high_edge)}. The grid may be too narrow; extend --alphas "
                "upwards.",
            )
        )
    if few:
        out.append(
            Finding(
                "warning",
                f"Few voxels survive the FDR threshold (fewer than "
                f"max({FEW_SIGNIFICANT}, 0.1 % of {n_vox})) for: {', '.join(few)}.",
            )
        )
    return out


def _ceiling_findings(data: ParticipantOutputs) -> list[Finding]:
    """The noise ceiling: missing, low, or resting on few repeated images."""
    out: list[Finding] = []
    if data.noise_ceiling is None:
        out.append(Finding("note", "No noise ceiling was computed (fewer than two repeated images)."))
    else:
        nc = data.noise_ceiling[np.isfinite(data.noise_ceiling)]
        p90 = float(np.percentile(nc, 90)) if nc.size else float("nan")
        if not p90 >= LOW_NOISE_CEILING:
            out.append(
                Finding(
                    "warning",
                    f"The noise ceiling is low: 90 % of the voxels are below {p90:.3g} "
                    f"(threshold {LOW_NOISE_CEILING:g}). Few responses are reliable; "
                    "expect low r everywhere.",
                )
            )
        n_rep = data.noise_sidecar.get("NImagesWithRepeats")
        if n_rep is not None and n_rep < FEW_REPEATED:
            out.append(
                Finding(
                    "note",
                    f"The noise ceiling rests on {n_rep} repeated images (fewer than "
                    f"{FEW_REPEATED}); it is itself a noisy estimate.",
                )
            )
    return out


def findings(data: ParticipantOutputs) -> list[Finding]:
    """Warnings and notes about one participant's outputs."""
    out = _fit_findings(data) + _ceiling_findings(data)
    side = data.first_sidecar
    n_test = side.get("Split", {}).get("NTest", side.get("NTest"))
    if n_test is not None and n_test < SMALL_TEST_SET:
        out.append(
            Finding(
                "warning",
                f"The test set has {n_test} images (fewer than {SMALL_TEST_SET}): the "
                f"standard deviation of r under the null is about "
                f"{1 / np.sqrt(max(n_test - 3, 1)):.2f}, so single-voxel r values are "
                "imprecise.",
            )
        )
    dropped = side.get("Responses", {}).get("NVoxelsDropped")
    if dropped:
        out.append(
            Finding("note", f"{dropped} voxels of the brain mask were dropped (constant or not finite in some run).")
        )
    if data.roi_table is None:
        out.append(Finding("note", "No ROI table was written (no ROI masks: --roi-dir)."))
    if not data.contrasts:
        out.append(Finding("note", "No contrast maps were written (contrasts not computed in this run)."))
    return out
