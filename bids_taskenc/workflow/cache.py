"""Results of earlier runs kept in the work folder, so a rerun skips finished work.

Each entry is keyed by a hash of everything its value depends on (input file
identities, settings, code version); a changed input or option gives a new key,
never a stale value.

An entry holds data, never code: ``<work_dir>/cache/<kind>/<key>/`` is a folder
of ``.npy`` arrays (read with ``allow_pickle=False``) and one ``entry.json``
that describes the value (which of the few known result types, its scalars,
lists and tables, and which array file holds which field). Nothing in an entry
is imported or executed, so a work folder on shared scratch that others can
write cannot run code as the user (a pickle could). An entry that does not
parse, names a type or file it may not, or whose recorded key differs from the
one asked for is recomputed with a warning.

Each array is stored once: ``Responses.data`` (the mean of each image's
trials) is not written beside ``trial_data`` but rebuilt from it on load, bit
for bit as :func:`~bids_taskenc.responses.images.average_repeats` made it;
responses are float32 (the participant's largest entry: n_trials x n_voxels x 4
bytes).

Entries are written into a temporary folder and renamed into place, so a run
killed half-way leaves either a whole entry or none.

The keys come from the settings objects (:func:`response_key`, :func:`fit_key`): every field of
:class:`~bids_taskenc.workflow.settings.ResponseSettings` is part of a responses key and every field of
:class:`~bids_taskenc.workflow.settings.FitSettings` of a fit key, so a setting added there is part of the
key without anyone listing it; output-only settings (what is written, progress bars, the work folder) are not.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd

from ..__about__ import __version__
from ..core.atomic import replace_folder
from ..encoding.result import EncodingResult
from ..outputs.atomic import write_json, write_npy
from ..responses.base import Responses
from ..responses.images import image_means
from .settings import ParticipantSettings

log = logging.getLogger(__name__)

#: Bumped when the layout of an entry changes; older entries are recomputed.
#: 2: ``Responses.data`` is not stored; it is rebuilt from ``trial_data`` (the mean of each image's trials).
FORMAT = 2
#: The only classes an entry may name (rebuilt from their fields, nothing imported by name).
_TYPES = {"Responses": Responses, "EncodingResult": EncodingResult}
_ARRAY_NAME = re.compile(r"^a[0-9]+\.npy$")
#: Fields not stored because they are rebuilt from others on load (each array once in the work folder).
_DERIVED = {"Responses": ("data",)}


def _image_means(fields: dict) -> np.ndarray:
    """``Responses.data`` from the stored single trials, exactly as :func:`average_repeats` made it."""
    try:
        trial_data = np.asarray(fields["trial_data"])
        index = np.asarray(fields["trial_image_index"])
        counts = np.asarray(fields["n_presentations"])
    except KeyError as exc:
        raise CacheEntryError(f"Responses: field {exc} missing") from exc
    if (
        trial_data.ndim != 2
        or index.shape != (trial_data.shape[0],)
        or index.dtype.kind not in "iu"
        or (index.size and (index.min() < 0 or index.max() >= len(counts)))
        or not np.array_equal(np.bincount(index, minlength=len(counts)), counts)
    ):
        raise CacheEntryError("Responses: trial_data, trial_image_index and n_presentations do not agree")
    return image_means(trial_data, index, counts)


def file_identity(path: str | Path | None) -> list | None:
    """Path, size, modification time and inode: cheap, for the large images (BOLD runs, betas) whose reading
    costs more than the key. A file edited in place keeping its size and time (``cp -p``, ``rsync``, ``tar``
    preserve times) would keep its identity: the small inputs are keyed by :func:`file_content` instead."""
    if path is None:
        return None
    st = Path(path).stat()
    return [str(Path(path).resolve()), st.st_size, st.st_mtime_ns, st.st_ino]


def file_content(path: str | Path | None) -> list | None:
    """Path and sha256 of the bytes: for the small inputs (events, confounds, masks, betas tables), so an edit
    that keeps the size and the modification time still changes the key."""
    if path is None:
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return [str(Path(path).resolve()), digest.hexdigest()]


#: How travg picks its volumes; part of the responses key so that entries of an older rule are not reused.
VOLUME_CHOICE = "nearest to onset + L*TR"


def response_key(settings: ParticipantSettings, preprocessed: list, beta_files: list) -> dict:
    """What one participant's responses depend on: the response settings, every input file (the BOLD runs and
    betas by identity, the small files by content), each run's timing."""
    values = settings.responses.to_dict()
    key = {
        "responses": {k: v for k, v in values.items() if k not in ("mask", "betas_dir")},
        "mask": file_content(settings.responses.mask),
        "runs": [
            [
                file_identity(p.bold),
                file_content(p.mask),
                file_content(p.confounds),
                file_content(p.raw.events),
                p.raw.repetition_time,
                p.start_time,
            ]
            for p in preprocessed
        ],
        "volume_choice": VOLUME_CHOICE,
    }
    if settings.responses.reads_betas:
        key["betas"] = [[file_identity(b.path), file_content(b.tsv)] for b in beta_files]
    return key


def fit_key(settings: ParticipantSettings, responses_key: dict, X: np.ndarray, device: str, predictions: bool) -> dict:
    """What one space's fit depends on: the responses, the features' bytes, the fit settings, the device, and
    what the fit returns besides its maps (the weights when they are written, the test predictions when a contrast
    or an ROI permutation needs them)."""
    return {
        "responses": responses_key,
        "features": hashlib.sha256(X.tobytes()).hexdigest(),
        "fit": settings.fit.to_dict(),
        "device": device,
        "weights": settings.outputs.save_weights,
        "predictions": predictions,
    }


class CacheEntryError(ValueError):
    """An entry that cannot be read back as data."""


class _Encoder:
    """Value -> JSON-able description plus numeric arrays to store as ``.npy``."""

    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}

    def array(self, a: np.ndarray):
        if a.dtype.kind in "biufc":
            name = f"a{len(self.arrays)}.npy"
            self.arrays[name] = a
            return {"__npy__": name}
        if a.dtype.kind in "OUS":
            return {
                "__array__": [self.value(x) for x in a.tolist()]
                if a.ndim == 1
                else [self.value(x) for x in a.ravel().tolist()],
                "dtype": a.dtype.str if a.dtype.kind != "O" else "object",
                "shape": list(a.shape),
            }
        raise CacheEntryError(f"array of dtype {a.dtype} cannot be cached as data")

    def value(self, v):
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, (int, float)) and not isinstance(v, np.generic):
            return v
        if isinstance(v, np.generic):
            if v.dtype.kind not in "biuf":
                raise CacheEntryError(f"numpy scalar of dtype {v.dtype} cannot be cached as data")
            return {"__scalar__": v.dtype.str, "value": v.item()}
        if isinstance(v, np.ndarray):
            return self.array(v)
        if isinstance(v, Path):
            return {"__path__": str(v)}
        if isinstance(v, tuple):
            return {"__tuple__": [self.value(x) for x in v]}
        if isinstance(v, list):
            return [self.value(x) for x in v]
        if isinstance(v, dict):
            if not all(isinstance(k, str) for k in v):
                raise CacheEntryError("dict keys must be strings")
            return {"__dict__": {k: self.value(x) for k, x in v.items()}}
        if isinstance(v, pd.DataFrame):
            columns = [str(c) for c in v.columns]
            if len(set(columns)) != len(columns):
                raise CacheEntryError("table columns must be unique strings")
            data = {}
            for c, col in zip(columns, v.columns, strict=True):
                s = v[col]
                if isinstance(s.dtype, np.dtype) and s.dtype.kind in "biuf":
                    data[c] = {"dtype": s.dtype.str, "values": self.array(s.to_numpy())}
                else:
                    values = [
                        None if (x is None or (not isinstance(x, str) and pd.isna(x))) else self.value(x)
                        for x in s.tolist()
                    ]
                    data[c] = {"dtype": str(s.dtype), "values": values}
            return {"__table__": {"columns": columns, "data": data, "n_rows": len(v)}}
        if isinstance(v, nib.Nifti1Image):
            return {"__nifti__": {"data": self.array(np.asarray(v.dataobj)), "affine": self.array(v.affine)}}
        if dataclasses.is_dataclass(v) and type(v).__name__ in _TYPES and type(v) is _TYPES[type(v).__name__]:
            derived = _DERIVED.get(type(v).__name__, ())
            return {
                "__dataclass__": type(v).__name__,
                "fields": {
                    f.name: self.value(getattr(v, f.name)) for f in dataclasses.fields(v) if f.name not in derived
                },
            }
        raise CacheEntryError(f"{type(v).__name__} cannot be cached as data")


class _Decoder:
    def __init__(self, folder: Path):
        self.folder = folder

    def npy(self, name) -> np.ndarray:
        if not isinstance(name, str) or not _ARRAY_NAME.match(name):
            raise CacheEntryError(f"array file name {name!r} is not one this cache writes")
        try:
            return np.load(self.folder / name, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise CacheEntryError(f"{name}: {exc}") from exc

    def value(self, v):
        if v is None or isinstance(v, (bool, str, int, float)):
            return v
        if isinstance(v, list):
            return [self.value(x) for x in v]
        if not isinstance(v, dict) or len(v) == 0:
            raise CacheEntryError(f"unexpected value {v!r}")
        if "__npy__" in v:
            return self.npy(v["__npy__"])
        if "__array__" in v:
            dtype = object if v["dtype"] == "object" else np.dtype(v["dtype"])
            values = [self.value(x) for x in v["__array__"]]
            out = np.empty(len(values), dtype=dtype)
            out[:] = values
            return out.reshape(v["shape"])
        if "__scalar__" in v:
            dtype = np.dtype(v["__scalar__"])
            if dtype.kind not in "biuf":
                raise CacheEntryError(f"scalar dtype {dtype}")
            return dtype.type(v["value"])
        if "__path__" in v:
            return Path(v["__path__"])
        if "__tuple__" in v:
            return tuple(self.value(x) for x in v["__tuple__"])
        if "__dict__" in v:
            return {str(k): self.value(x) for k, x in v["__dict__"].items()}
        if "__table__" in v:
            t = v["__table__"]
            cols = {}
            for c in t["columns"]:
                spec = t["data"][c]
                column = self.value(spec["values"])
                if isinstance(column, np.ndarray):
                    cols[c] = pd.Series(column, dtype=np.dtype(spec["dtype"]))
                else:
                    cols[c] = pd.Series(column, dtype=object if spec["dtype"] == "object" else spec["dtype"])
            table = pd.DataFrame(cols, columns=t["columns"])
            if len(table) != t["n_rows"]:
                raise CacheEntryError("table length differs from the recorded one")
            return table
        if "__nifti__" in v:
            img = v["__nifti__"]
            return nib.Nifti1Image(self.value(img["data"]), self.value(img["affine"]))
        if "__dataclass__" in v:
            cls = _TYPES.get(v["__dataclass__"])
            if cls is None:
                raise CacheEntryError(f"type {v['__dataclass__']!r} is not one this cache stores")
            names = {f.name for f in dataclasses.fields(cls)} - set(_DERIVED.get(cls.__name__, ()))
            fields = v["fields"]
            if set(fields) - names:
                raise CacheEntryError(f"{cls.__name__}: unknown fields {sorted(set(fields) - names)}")
            kwargs = {k: self.value(x) for k, x in fields.items()}
            if cls is Responses:
                kwargs["data"] = _image_means(kwargs)
            return cls(**kwargs)
        raise CacheEntryError(f"unexpected value {sorted(v)}")


class WorkCache:
    """Data-only results under ``<work_dir>/cache/<kind>/<key>/`` (``entry.json`` + ``a<i>.npy``)."""

    def __init__(self, work_dir: str | Path):
        self.root = Path(work_dir) / "cache"

    @staticmethod
    def key(parts: dict) -> str:
        text = json.dumps({"version": __version__, **parts}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def entry(self, kind: str, parts: dict) -> Path:
        return self.root / kind / self.key(parts)

    def load(self, kind: str, key: str) -> Any:
        """The stored value; raises :class:`CacheEntryError` (or OSError) when the entry is not usable."""
        folder = self.root / kind / key
        try:
            meta = json.loads((folder / "entry.json").read_text())
        except (ValueError, RecursionError) as exc:
            raise CacheEntryError(f"entry.json does not parse ({exc})") from exc
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise CacheEntryError(
                f"entry format {meta.get('format') if isinstance(meta, dict) else None!r}, expected {FORMAT}"
            )
        if meta.get("kind") != kind or meta.get("key") != key:
            raise CacheEntryError(
                f"entry records kind {meta.get('kind')!r} key {meta.get('key')!r}, not {kind!r} {key!r}"
            )
        try:
            return _Decoder(folder).value(meta["value"])
        except (KeyError, TypeError, ValueError, RecursionError) as exc:  # CacheEntryError is a ValueError
            raise CacheEntryError(f"{type(exc).__name__}: {exc}") from exc

    def store(self, kind: str, key: str, value: Any) -> Path | None:
        """Write ``value`` as an entry; returns its folder, or None when ``value`` is not data we store."""
        enc = _Encoder()
        try:
            described = enc.value(value)
        except CacheEntryError as exc:
            log.warning("work cache: %s result not stored (%s)", kind, exc)
            return None
        final = self.root / kind / key
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.parent / f".{key}.{uuid.uuid4().hex[:12]}"
        tmp.mkdir()
        try:
            for name, array in enc.arrays.items():
                write_npy(tmp / name, array)
            write_json(
                tmp / "entry.json",
                {"format": FORMAT, "kind": kind, "key": key, "version": __version__, "value": described},
            )
            try:
                replace_folder(tmp, final)  # replacing a broken entry
            except OSError:
                if not final.is_dir():  # else a concurrent run stored the same entry first
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return final

    def get_or_compute(self, kind: str, parts: dict, compute: Callable[[], Any]) -> Any:
        key = self.key(parts)
        folder = self.root / kind / key
        if folder.is_dir():
            try:
                value = self.load(kind, key)
                log.debug("work cache hit: %s", folder)
                return value
            except (CacheEntryError, OSError) as exc:  # a damaged or foreign entry is recomputed, never trusted
                log.warning("%s: unusable work-cache entry (%s); recomputing", folder, exc)
        value = compute()
        self.store(kind, key, value)
        return value
