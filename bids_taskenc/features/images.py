"""Decode stimulus images once: centre-crop to a square, resize, uint8 RGB.

Every image feature space sees the same decode: PIL, converted to RGB (grey,
palette, CMYK and alpha images included; EXIF orientation is ignored, as the
original Taskonomy loader and PIL do), centre-cropped to its shorter side and
resized with PIL's antialiased bilinear filter. JPEGs are first reduced by the
decoder's DCT scaling (``Image.draft``) as far as the crop stays at least the
target size, which is much faster for large photos and is itself an
antialiased downscale.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from .base import FeatureError, FeatureInputMissing

#: Bump when decoding/cropping/resizing changes (feature cache keys include it).
IMAGE_PREPROCESSING_VERSION = "pil-centercrop-bilinear-aa-draft-1"

_CHUNK = 1 << 20


def content_hash(path: str | Path) -> str:
    """sha256 of the file's bytes (the image's identity in the feature cache)."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(_CHUNK), b""):
                h.update(chunk)
    except OSError as exc:
        raise FeatureError(f"{path}: stimulus image cannot be read ({exc.strerror or exc})") from exc
    return h.hexdigest()


def decode(path: str | Path, sizes: tuple[int, ...]) -> dict[int, np.ndarray]:
    """Decode ``path`` once; one ``(3, s, s)`` uint8 RGB array per size ``s``.

    Raises FeatureError naming the file when it is missing or not an image.
    """
    from PIL import Image, UnidentifiedImageError

    biggest = max(sizes)
    try:
        with Image.open(path) as img:
            if img.format == "JPEG":
                img.draft("RGB", (biggest, biggest))
            rgb = img.convert("RGB")
            w, h = rgb.size
            side = min(w, h)
            left, top = (w - side) // 2, (h - side) // 2
            box = (left, top, left + side, top + side)
            out = {}
            for s in sizes:
                if side == s:
                    sq = rgb.crop(box)
                else:
                    sq = rgb.resize((s, s), Image.Resampling.BILINEAR, box=box)
                out[s] = np.ascontiguousarray(np.asarray(sq, dtype=np.uint8).transpose(2, 0, 1))
            return out
    except FileNotFoundError as exc:
        raise FeatureInputMissing(f"{path}: stimulus image not found") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise FeatureError(f"{path}: stimulus image cannot be decoded ({exc})") from exc
