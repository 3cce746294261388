"""Resources of a run (threads, workers, memory, device), and the software versions its outputs record."""

from __future__ import annotations

import os

from ..errors import UsageError
from .settings import ResourceSettings

#: threadpoolctl's limiter; kept so the BLAS limits stay for the whole process.
_blas_limits = None


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, e.g. a SLURM allocation), else the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


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
