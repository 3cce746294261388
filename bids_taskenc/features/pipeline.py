"""Images -> feature matrices for many feature spaces at once.

Each distinct image is decoded once (PIL, thread pool, a bounded number of
batches decoded ahead of the model), and each decoded batch is fed to every
image feature space that still needs it. With a ``cache_dir``, rows are looked
up by image content hash first and only missing rows are computed (a rerun, or
a participant who saw the same images, computes nothing). On CUDA the uint8
batch is pinned, copied once, converted once and shared; models run
channels-last under bf16 autocast; results come back to the host once per batch. On the CPU the
Taskonomy encoders do the same under ``precision='fast'`` where the CPU has native bf16 (:mod:`.cpu`).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .base import FeatureError, FeatureSpace, ImageFeatureSpace, LookupFeatureSpace
from .cache import FeatureCache
from .cpu import EXACT
from .images import content_hash, decode

log = logging.getLogger(__name__)


def _check_device(device: str) -> str:
    import torch

    device = str(device)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise FeatureError(f"device {device!r} requested but CUDA is not available to torch {torch.__version__}")
    if not (device == "cpu" or device.startswith("cuda") or device == "mps"):
        raise FeatureError(f"device {device!r}: use 'cpu', 'cuda' or 'cuda:<n>'")
    return device


def _by_kind(spaces: Sequence[FeatureSpace]) -> tuple[list[LookupFeatureSpace], list[ImageFeatureSpace]]:
    """The spaces that look rows up by stimulus name, and those computed from the decoded images."""
    lookup, image = [], []
    for space in spaces:
        if isinstance(space, LookupFeatureSpace):
            lookup.append(space)
        elif isinstance(space, ImageFeatureSpace):
            image.append(space)
        else:
            raise FeatureError(f"{space.name}: a feature space is a LookupFeatureSpace or an ImageFeatureSpace")
    return lookup, image


def featurize(
    spaces: Sequence[FeatureSpace],
    stimulus_names: list[str],
    stimulus_paths: list[Path | None],
    *,
    cache_dir: str | Path | None = None,
    device: str = "cpu",
    batch_size: int = 32,
    num_workers: int = 2,
    progress: bool = True,
    precision: str = EXACT,
) -> dict[str, np.ndarray]:
    """Feature matrices for ``stimulus_names``, one per space.

    Parameters
    ----------
    spaces : feature spaces (lookup and/or image spaces).
    stimulus_names : file names as the events give them (lookup spaces match on these).
    stimulus_paths : image file per stimulus; may be None where only lookup spaces are asked for.
    cache_dir : content-addressed feature cache folder (None: no cache).
    device : 'cpu' (exact fp32) or 'cuda[:n]' (bf16 autocast, channels-last).
    precision : the run's ``--precision``: 'exact', or 'fast', under which the Taskonomy encoders
        also run in bf16 on a CPU with native bf16 (:mod:`.cpu`).
    batch_size : images per forward pass.
    num_workers : decode threads.
    progress : tqdm bar per image feature space.

    Returns
    -------
    dict
        ``space.name -> (n_stimuli, dim)`` float32, rows in the order given.
        Each image space's ``provenance['precision']`` is set to the precision used.

    Raises
    ------
    FeatureError
        A stimulus without a path or whose image is missing/undecodable (naming
        the file), a lookup space without a row for a stimulus, an unusable device.
    """
    n = len(stimulus_names)
    if len(stimulus_paths) != n:
        raise ValueError(f"{n} stimulus names but {len(stimulus_paths)} paths")
    lookup_spaces, image_spaces = _by_kind(spaces)
    out = {s.name: s.lookup(stimulus_names) for s in lookup_spaces}
    if not image_spaces:
        return out
    device = _check_device(device)
    paths = _image_paths(image_spaces, stimulus_names, stimulus_paths)
    for space in image_spaces:
        space.provenance["precision"] = space.precision(device, precision)

    with ThreadPoolExecutor(max_workers=max(1, int(num_workers)), thread_name_prefix="featurize") as pool:
        row_keys, path_by_key = _image_keys(paths, hashed=cache_dir is not None, pool=pool)
        keys = list(path_by_key)
        caches = (
            {s.name: FeatureCache(cache_dir, s, s.precision(device, precision)) for s in image_spaces}
            if cache_dir
            else {}
        )
        rows, missing = _cached_rows(image_spaces, keys, caches, pool)
        todo = [k for k in keys if any(k in missing[s.name] for s in image_spaces)]
        if todo:
            _compute(
                image_spaces,
                todo,
                path_by_key,
                missing,
                rows,
                caches,
                pool,
                device=device,
                mode=precision,
                batch_size=max(1, int(batch_size)),
                prefetch=2,
                progress=progress,
            )

    for s in image_spaces:
        out[s.name] = _stacked(s, rows[s.name], row_keys)
    return out


def _image_paths(image_spaces, stimulus_names, stimulus_paths) -> list[Path]:
    """Every stimulus's image file; FeatureError naming the first stimulus without one."""
    for name, path in zip(stimulus_names, stimulus_paths):
        if path is None:
            raise FeatureError(
                f"stimulus {name!r}: no image file found, but "
                f"{', '.join(s.name for s in image_spaces)} compute from images"
            )
    return [Path(p) for p in stimulus_paths]


def _image_keys(paths: list[Path], *, hashed: bool, pool) -> tuple[list[str], dict[str, Path]]:
    """The identity of each row's image, and one path per identity (in first-seen order).

    With a cache the identity is the content hash (shared across participants and renamed
    copies), else the path.
    """
    unique_paths = list(dict.fromkeys(paths))
    if hashed:
        keys_by_path = dict(zip(unique_paths, pool.map(content_hash, unique_paths)))
    else:
        keys_by_path = {p: str(p) for p in unique_paths}
    path_by_key: dict[str, Path] = {}
    for p in unique_paths:
        path_by_key.setdefault(keys_by_path[p], p)
    return [keys_by_path[p] for p in paths], path_by_key


def _cached_rows(image_spaces, keys, caches, pool) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, set[str]]]:
    """Rows each space finds in its cache, and the image keys it still misses (logged per space)."""
    rows: dict[str, dict[str, np.ndarray]] = {s.name: {} for s in image_spaces}
    missing: dict[str, set[str]] = {}
    for s in image_spaces:
        cache = caches.get(s.name)
        if cache is not None:
            for k, row in zip(keys, pool.map(cache.get, keys)):
                if row is not None:
                    rows[s.name][k] = row
        missing[s.name] = {k for k in keys if k not in rows[s.name]}
        if cache is not None:
            log.info(
                "feature cache %s: %d of %d images hit, %d to compute (%s)",
                s.name,
                len(rows[s.name]),
                len(keys),
                len(missing[s.name]),
                cache.folder,
            )
    return rows, missing


def _stacked(space: ImageFeatureSpace, got: dict[str, np.ndarray], row_keys: list[str]) -> np.ndarray:
    """``(n_stimuli, dim)`` float32 rows in stimulus order; sets ``space.dim`` when it was unknown."""
    if not row_keys:
        return np.zeros((0, space.dim or 0), dtype=np.float32)
    matrix = np.ascontiguousarray(np.stack([got[k] for k in row_keys]), dtype=np.float32)
    if space.dim is None:
        space.dim = int(matrix.shape[1])
    return matrix


def _compute(spaces, todo, path_by_key, missing, rows, caches, pool, *, device, mode, batch_size, prefetch, progress):
    """Decode ``todo`` images batch by batch and run each space on the images it misses."""
    import torch
    from tqdm.auto import tqdm

    cuda = device.startswith("cuda")
    if cuda:
        torch.backends.cudnn.benchmark = True
    sizes = tuple(sorted({s.input_size for s in spaces if missing[s.name]}))
    batches = [todo[i : i + batch_size] for i in range(0, len(todo), batch_size)]
    bars = {
        s.name: tqdm(
            total=len(missing[s.name]),
            desc=s.name,
            unit="img",
            position=i,
            disable=not progress or not missing[s.name],
            leave=True,
        )
        for i, s in enumerate(spaces)
    }
    queue: deque = deque()
    writes = []

    def submit(batch):
        queue.append((batch, [pool.submit(decode, path_by_key[k], sizes) for k in batch]))

    try:
        it = iter(batches)
        for batch in it:
            submit(batch)
            if len(queue) >= prefetch:
                break
        while queue:
            batch, futures = queue.popleft()
            nxt = next(it, None)
            if nxt is not None:
                submit(nxt)
            decoded = [f.result() for f in futures]
            images = {}
            for size in sizes:
                x = torch.from_numpy(np.stack([d[size] for d in decoded]))
                if cuda:
                    x = x.pin_memory().to(device, non_blocking=True)
                images[size] = x.float().div_(255.0)
            results = []
            for s in spaces:
                idx = [j for j, k in enumerate(batch) if k in missing[s.name]]
                if not idx:
                    continue
                x = images[s.input_size]
                if len(idx) != len(batch):
                    x = x[torch.tensor(idx, device=x.device)]
                results.append((s, [batch[j] for j in idx], s.extract_tensor(x, device, mode)))
            for s, ks, feats in results:  # one device->host sync per batch, after all spaces queued
                arr = np.ascontiguousarray(feats.detach().float().cpu().numpy(), dtype=np.float32)
                if arr.shape[0] != len(ks):
                    raise FeatureError(f"{s.name}: returned {arr.shape[0]} rows for {len(ks)} images")
                for k, row in zip(ks, arr):
                    rows[s.name][k] = row
                    if s.name in caches:
                        writes.append(pool.submit(caches[s.name].put, k, row))
                bars[s.name].update(len(ks))
    finally:
        for _, futures in queue:
            for f in futures:
                f.cancel()
        for bar in bars.values():
            bar.close()
    failed = [f.exception() for f in writes if f.exception() is not None]
    if failed:
        log.warning("feature cache: %d rows not written (%s)", len(failed), failed[0])
