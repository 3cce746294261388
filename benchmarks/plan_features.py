"""Featurization measured on a seeded sample of the stimuli, inside the app's own run.

Used by ``benchmarks/participant_plan.py`` in its child process. :func:`install` replaces the
``featurize`` that ``bids_taskenc.workflow.data`` calls with one that

1. picks a seeded sample of ``n_sample`` of the images it is asked for (and ``n_warm`` others);
2. for each precision asked for (the app's own last, so the sidecars record it): featurizes, with
   the app's spaces and any ``extra`` ones (the 21 encoders when the app fits fewer), the
   warm-up images (loads the weights, lays them out; timed, not scaled), then the sample with the
   app's own arguments (cache folder, device, decode threads), timing each encoder's forward
   passes (``TaskonomyFeatureSpace.extract_tensor``) and the whole call;
3. returns the app's features for every image: the sample's rows are the computed ones, every
   other row is seeded Gaussian noise with the sample's column means and standard deviations.
   The ridge fits' time does not depend on the values (one eigendecomposition per fold of
   matrices of fixed size), so the fits are timed at full size; their maps mean nothing.

Only the sample's (real) rows reach the feature cache. With ``n_sample=0`` nothing is computed:
every row is noise (later grids of the benchmark: featurization does not depend on voxels).
"""

from __future__ import annotations

import time
from collections import defaultdict

import numpy as np


class EncoderClock:
    """Seconds spent in each encoder's forward passes, per precision mode."""

    def __init__(self) -> None:
        self.seconds: dict[str, dict[str, float]] = defaultdict(dict)
        self.mode = "exact"
        self._undo: tuple | None = None

    def install(self) -> None:
        from bids_taskenc.features import taskonomy

        original = taskonomy.TaskonomyFeatureSpace.extract_tensor
        clock = self

        def timed(space, images, device="cpu", mode="exact"):
            t0 = time.perf_counter()
            out = original(space, images, device, mode)
            if str(device).startswith("cuda"):
                import torch

                torch.cuda.synchronize()
            per = clock.seconds[clock.mode]
            per[space.name] = per.get(space.name, 0.0) + time.perf_counter() - t0
            return out

        taskonomy.TaskonomyFeatureSpace.extract_tensor = timed  # type: ignore[method-assign]
        self._undo = (taskonomy.TaskonomyFeatureSpace, original)

    def restore(self) -> None:
        if self._undo:
            cls, original = self._undo
            cls.extract_tensor = original
            self._undo = None


def sample_indices(n: int, n_sample: int, n_warm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted row indices of the timed sample and of the warm-up images (disjoint), seeded."""
    n_sample = min(n_sample, n)
    n_warm = min(n_warm, n - n_sample)
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[:n_sample]), np.sort(order[n_sample : n_sample + n_warm])


def filled(computed: np.ndarray | None, rows: np.ndarray, n: int, dim: int, rng) -> np.ndarray:
    """``(n, dim)`` float32: ``computed`` at ``rows``, seeded noise with its column moments elsewhere."""
    if computed is None or len(computed) == 0:
        return rng.standard_normal((n, dim), dtype=np.float32)
    mean = computed.mean(0, dtype=np.float64).astype(np.float32)
    sd = computed.std(0, dtype=np.float64).astype(np.float32)
    sd[sd == 0] = 1.0
    out = rng.standard_normal((n, dim), dtype=np.float32)
    out *= sd
    out += mean
    out[rows] = computed
    return out


def all_spaces(spaces: list, extra: list[str], weights_dir) -> list:
    """The app's ``spaces`` and the ``extra`` ones (names), resolved from the same weights store as the app's."""
    from bids_taskenc.features.registry import resolve_feature_spaces

    have = {s.name for s in spaces}
    todo = [name for name in extra if name not in have]
    return list(spaces) + (resolve_feature_spaces(todo, weights_dir=weights_dir, offline=True) if todo else [])


def install(
    record: dict,
    *,
    n_sample: int,
    n_warm: int,
    precisions: list[str],
    seed: int,
    clock: EncoderClock,
    extra: tuple[str, ...] = (),
    weights_dir=None,
):
    """Replace ``bids_taskenc.workflow.data.featurize`` (see the module docstring); measurements go
    into ``record`` (``record['features']``); returns a function that undoes it. ``extra`` names
    spaces featurized in the measurement besides the app's own (from ``weights_dir``, offline)."""
    from bids_taskenc.workflow import data

    real = data.featurize

    def sampled(spaces, names, paths, *, precision="exact", **kwargs):
        n = len(names)
        rows, warm = sample_indices(n, n_sample, n_warm, seed)
        out: dict[str, np.ndarray] = {}
        got: dict[str, np.ndarray] = {}
        modes = [m for m in precisions if m != precision] + [precision]
        per_mode = {}
        measured = all_spaces(spaces, list(extra), weights_dir) if len(rows) else spaces
        for mode in modes if len(rows) else []:
            per_mode[mode], got = _measure(real, measured, names, paths, rows, warm, mode, kwargs, clock)
        rng = np.random.default_rng(seed + 1)
        for s in spaces:
            computed = got.get(s.name)
            dim = computed.shape[1] if computed is not None else int(s.dim or 2048)
            out[s.name] = filled(computed, rows, n, dim, rng)
        record["features"] = {
            "n_images": n,
            "n_sample": int(len(rows)),
            "n_warm": int(len(warm)),
            "seed": seed,
            "app_precision": precision,
            "n_encoders": len([s for s in measured if s.needs_images]),
            "batch_size": kwargs.get("batch_size", 32),
            "num_workers": kwargs.get("num_workers"),
            "modes": per_mode,
        }
        return out

    data.featurize = sampled  # type: ignore[assignment]
    return lambda: setattr(data, "featurize", real)


def _measure(real, spaces, names, paths, rows, warm, mode, kwargs, clock):
    """Warm-up then the timed sample in one precision ``mode``; its record and the sample's features."""

    def pick(idx):
        return [names[i] for i in idx], [paths[i] for i in idx]

    t_warm = 0.0
    clock.mode = f"warm-{mode}"
    if len(warm):
        warm_names, warm_paths = pick(warm)
        t0 = time.perf_counter()
        real(spaces, warm_names, warm_paths, **{**kwargs, "cache_dir": None}, precision=mode)
        t_warm = time.perf_counter() - t0
    clock.mode = mode
    sample_names, sample_paths = pick(rows)
    t0 = time.perf_counter()
    got = real(spaces, sample_names, sample_paths, **kwargs, precision=mode)
    t_all = time.perf_counter() - t0
    encoders = clock.seconds.get(mode, {})
    rec = {
        "precision_used": sorted({s.provenance.get("precision", "?") for s in spaces if s.needs_images}),
        "warmup_seconds": round(t_warm, 3),
        "sample_seconds": round(t_all, 3),
        "encoder_seconds": {k: round(v, 3) for k, v in encoders.items()},
        "decode_and_rest_seconds": round(t_all - sum(encoders.values()), 3),
    }
    return rec, got
