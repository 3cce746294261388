"""Resources of a run (threads, workers, memory, device), and the software versions its outputs record.

The CPU count, the resident memory and the ceiling's arithmetic live in :mod:`bids_taskenc.core.resources` (one home
for the responses' readers, the engine's batches and the checks here); :func:`available_cpus` and :func:`rss_bytes`
are re-exported, as the command line and tests use them from here.
"""

from __future__ import annotations

import os

from ..core.resources import BYTES_PER_GB, room_bytes
from ..core.resources import available_cpus as available_cpus
from ..core.resources import rss_bytes as rss_bytes
from ..errors import UsageError
from .settings import ResourceSettings

#: threadpoolctl's limiter; kept so the BLAS limits stay for the whole process.
_blas_limits = None


def apply_resources(resources: ResourceSettings) -> dict:
    """Apply ``omp_nthreads`` to this process; return the record the run log and the sidecars keep (``Resources``).

    ``omp_nthreads`` sets torch's intra-op threads and, through threadpoolctl, every BLAS/OpenMP pool already
    loaded (and ``OMP_NUM_THREADS`` & co. for the ones loaded later). ``NProcs`` is ``nprocs`` or, when None,
    :func:`available_cpus`.
    """
    global _blas_limits
    import torch

    if resources.omp_nthreads is not None:
        n = int(resources.omp_nthreads)
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(n)
        torch.set_num_threads(n)
        from threadpoolctl import threadpool_limits

        _blas_limits = threadpool_limits(limits=n)
    return {
        "NProcs": resources.nprocs or available_cpus(),
        "OMPNThreads": resources.omp_nthreads,
        "TorchThreads": torch.get_num_threads(),
        "MemMB": resources.mem_mb,
    }


def resolve_device(requested: str) -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``; ``cuda`` without a device is an error."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available (use --device cpu or auto)")
    return requested


def container_info() -> dict | None:
    """The container the run is in (``GeneratedBy.Container`` of dataset_description.json), from the environment."""
    kind = os.environ.get("BIDS_TASKENC_CONTAINER")
    return {"Type": kind, "Tag": os.environ.get("BIDS_TASKENC_IMAGE", "")} if kind else None


def fit_mem_gb(
    mem_gb: float | None, device: str, inputs: int, outputs: int, *, given_as: str | None = None
) -> float | None:
    """The part of the memory ceiling (``--mem``) a fit may use for its voxel batches.

    On the CPU, the ceiling bounds the whole process: what it holds already
    (resident memory now: responses, features, contrast sums, the rows passed
    to the fit), what the fit copies inside (``inputs`` bytes: float64
    features) and what it returns (``outputs``: test predictions, weights)
    come off it first. On a GPU
    it bounds the device memory the fit uses (the host is not counted). An error
    when nothing would be left; ``given_as`` is how the user gave the ceiling (``--mem 500M``), for the message.
    """
    if mem_gb is None or str(device).startswith("cuda"):
        return mem_gb
    ceiling = mem_gb * BYTES_PER_GB
    left = room_bytes(ceiling, rss_bytes(), inputs, outputs)
    if left < FIT_MARGIN * ceiling:
        raise UsageError(
            f"{given_as or f'--mem {mem_gb * 1000:g}'}: the process already holds {rss_bytes() / 1e9:.2f} GB and "
            f"the fit's inputs and outputs need {(inputs + outputs) / 1e9:.2f} GB, leaving no room under the "
            f"{mem_gb:g} GB ceiling for its voxel batches; raise it"
        )
    return left / BYTES_PER_GB


#: The share of the ceiling a fit needs left for its voxel batches (at least).
FIT_MARGIN = 0.05
