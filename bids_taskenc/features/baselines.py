"""Weight-free low-level baselines: the standard controls for encoding models.

* ``baseline:gabor``  GIST-like Gabor-energy pyramid (Oliva & Torralba 2001):
  luminance at 128 px, 4 scales x 8 orientations of quadrature Gabor filters
  applied in the Fourier domain, energy (modulus) averaged over a 4x4 grid:
  512 values.
* ``baseline:pixels`` luminance (Rec. 709 weights on sRGB values, [0, 1]) at
  32x32 (area average): 1024 values.
* ``baseline:color``  CIELAB colour statistics: mean and standard deviation of
  L*, a*, b* in each cell of a 4x4 grid: 96 values.

All three belong to group ``"other"``: they are controls, not Taskonomy tasks,
and putting them in ``"2D"`` would pull the 2D cluster of the group-level task
tree towards pixel statistics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .base import FeatureError, ImageFeatureSpace
from .cpu import EXACT
from .families import FamilySpaces

if TYPE_CHECKING:
    import torch

BASELINE_VERSION = "1"
BASELINES = ("gabor", "pixels", "color")

_LUMA = (0.2126, 0.7152, 0.0722)


def _luma(images):
    """``(N, 3, H, W)`` sRGB [0, 1] -> ``(N, 1, H, W)``."""
    r, g, b = images[:, 0:1], images[:, 1:2], images[:, 2:3]
    return _LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b


def srgb_to_lab(images):
    """CIELAB (D65) of sRGB images in [0, 1]: ``(N, 3, H, W)`` -> L* [0, 100], a*, b*."""
    import torch

    lin = torch.where(images > 0.04045, ((images + 0.055) / 1.055) ** 2.4, images / 12.92)
    m = torch.tensor(
        [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]],
        dtype=lin.dtype,
        device=lin.device,
    )
    xyz = torch.einsum("ij,njhw->nihw", m, lin)
    white = torch.tensor([0.95047, 1.0, 1.08883], dtype=lin.dtype, device=lin.device).view(1, 3, 1, 1)
    t = xyz / white
    f = torch.where(t > 0.008856, t.clamp_min(1e-12) ** (1.0 / 3.0), 7.787 * t + 16.0 / 116.0)
    L = 116.0 * f[:, 1] - 16.0
    a = 500.0 * (f[:, 0] - f[:, 1])
    b = 200.0 * (f[:, 1] - f[:, 2])
    return torch.stack([L, a, b], dim=1)


def gabor_bank(size: int, n_scales: int = 4, n_orientations: int = 8):
    """Fourier-domain Gabor transfer functions, ``(n_scales * n_orientations, size, size)``.

    Scale ``s`` has centre frequency ``f0 = 0.25 / 2**s`` cycles/pixel, a Gaussian
    radial sigma of ``f0 / 2`` and an angular full width at half maximum equal to
    the orientation spacing (``pi / n_orientations``); orientation ``k`` points
    the wave vector at ``k * pi / n_orientations`` from the x axis (0: a grating
    whose luminance changes along x, i.e. vertical bars). Only one half-plane
    is passed, so the filtered image is complex (a quadrature pair) and its
    modulus is the local energy.
    """
    import torch

    freqs = torch.fft.fftfreq(size, dtype=torch.float64)
    v, u = torch.meshgrid(freqs, freqs, indexing="ij")  # rows: y frequency, cols: x frequency
    bank = []
    for s in range(n_scales):
        f0 = 0.25 / 2**s
        sigma_r = 0.5 * f0
        sigma_t = f0 * (math.pi / n_orientations) / 2.355  # angular FWHM = orientation spacing
        for k in range(n_orientations):
            th = k * math.pi / n_orientations
            up = u * math.cos(th) + v * math.sin(th)
            vp = -u * math.sin(th) + v * math.cos(th)
            bank.append(torch.exp(-((up - f0) ** 2) / (2 * sigma_r**2) - vp**2 / (2 * sigma_t**2)))
    return torch.stack(bank).float()


def _grid_pool(x, grid: int):
    import torch.nn.functional as F

    return F.adaptive_avg_pool2d(x, grid)


@dataclass
class BaselineFeatureSpace(ImageFeatureSpace):
    """One weight-free baseline; ``extract``: ``(N, 3, 256, 256)`` [0, 1] -> ``(N, dim)`` float32."""

    kind: str = "gabor"
    _bank: torch.Tensor | None = field(default=None, repr=False)

    GABOR_SIZE = 128
    GABOR_SCALES = 4
    GABOR_ORIENTATIONS = 8
    GRID = 4
    PIXELS_SIZE = 32

    def extract_tensor(self, images, device: str = "cpu", mode: str = EXACT):
        import torch
        import torch.nn.functional as F

        x = images.to(device, torch.float32)
        with torch.inference_mode():
            if self.kind == "pixels":
                out = F.adaptive_avg_pool2d(_luma(x), self.PIXELS_SIZE)
            elif self.kind == "color":
                lab = srgb_to_lab(x)
                n, c, h, w = lab.shape
                g = self.GRID
                if h % g or w % g:
                    raise FeatureError(f"{self.name}: image size {h}x{w} not divisible by the {g}x{g} grid")
                cells = lab.reshape(n, c, g, h // g, g, w // g).permute(0, 1, 2, 4, 3, 5).flatten(4)
                std, mean = torch.std_mean(cells, dim=-1, correction=0)
                out = torch.cat([mean.flatten(1), std.flatten(1)], dim=1)
            elif self.kind == "gabor":
                lum = F.adaptive_avg_pool2d(_luma(x), self.GABOR_SIZE)[:, 0]
                lum = lum - lum.mean(dim=(-2, -1), keepdim=True)
                if self._bank is None or self._bank.device != lum.device:
                    self._bank = gabor_bank(self.GABOR_SIZE, self.GABOR_SCALES, self.GABOR_ORIENTATIONS).to(lum.device)
                spec = torch.fft.fft2(lum).unsqueeze(1)  # (N, 1, S, S)
                energy = torch.fft.ifft2(spec * self._bank).abs()  # (N, scales*orients, S, S)
                out = _grid_pool(energy, self.GRID)
            else:
                raise FeatureError(f"unknown baseline {self.kind!r}; known: {', '.join(BASELINES)}")
        return out.reshape(out.shape[0], -1).float()

    def extract(self, images, device: str = "cpu") -> np.ndarray:
        return self.extract_tensor(images, device).cpu().numpy()


def make_baseline(kind: str) -> BaselineFeatureSpace:
    """``'gabor'``, ``'pixels'`` or ``'color'`` as a feature space."""
    import torch

    B = BaselineFeatureSpace
    specs = {
        "gabor": (
            B.GABOR_SCALES * B.GABOR_ORIENTATIONS * B.GRID**2,
            "GIST-like Gabor energy: 4 scales x 8 orientations x 4x4 grid of 128-px luminance",
            {
                "size": B.GABOR_SIZE,
                "scales": B.GABOR_SCALES,
                "orientations": B.GABOR_ORIENTATIONS,
                "grid": B.GRID,
                "center_freqs_cpp": [0.25 / 2**s for s in range(B.GABOR_SCALES)],
            },
        ),
        "pixels": (B.PIXELS_SIZE**2, "luminance (Rec. 709) at 32x32, area-averaged", {"size": B.PIXELS_SIZE}),
        "color": (2 * 3 * B.GRID**2, "CIELAB L*a*b* mean and std per cell of a 4x4 grid", {"grid": B.GRID}),
    }
    if kind not in specs:
        raise FeatureError(f"unknown baseline {kind!r}; known: {', '.join('baseline:' + k for k in BASELINES)}")
    dim, desc, params = specs[kind]
    return BaselineFeatureSpace(
        name=f"baseline:{kind}",
        group="other",
        dim=dim,
        description=desc,
        input_size=256,
        provenance={
            "family": "baseline",
            "kind": kind,
            "params": params,
            "preprocessing_version": BASELINE_VERSION,
            "torch": torch.__version__,
        },
        kind=kind,
    )


class BaselineSpaces(FamilySpaces):
    """The ``baseline`` family: ``baseline:gabor``, ``baseline:pixels``, ``baseline:color`` (bare names too)."""

    def names(self) -> list[str]:
        return [f"baseline:{kind}" for kind in BASELINES]

    def bare(self, name: str) -> str | None:
        return f"baseline:{name}" if name in BASELINES else None

    def space(self, name: str) -> BaselineFeatureSpace | None:
        kind = name.partition(":")[2]
        return make_baseline(kind) if kind in BASELINES else None
