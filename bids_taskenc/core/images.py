"""Typed readers of the image files we open: one place where ``nibabel.load``'s loose return type is narrowed.

``nibabel.load`` is annotated to return the base ``FileBasedImage``, which has no ``dataobj``, ``shape``,
``affine`` or ``darrays``; every caller would need its own cast. These readers say what each file is. They do not
check the format (``nibabel.load`` still picks the reader from the file); callers that must refuse a wrong file
check it themselves, as before.
"""

from __future__ import annotations

import os
from typing import cast

import nibabel as nib


def load_volume(path: str | os.PathLike[str]) -> nib.Nifti1Image:
    """A NIfTI-1 or NIfTI-2 volume (``Nifti2Image`` is a subclass of ``Nifti1Image``), data not yet read."""
    return cast(nib.Nifti1Image, nib.load(os.fspath(path)))


def load_surface(path: str | os.PathLike[str]) -> nib.GiftiImage:
    """A GIFTI file (``.func.gii``, ``.shape.gii``, ``.surf.gii``, ``.label.gii``)."""
    return cast(nib.GiftiImage, nib.load(os.fspath(path)))
