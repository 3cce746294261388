"""Where the ridge engine computes: torch device, float precision and memory budget.

Three precision modes are understood by every engine in
:mod:`bids_taskenc.encoding`:

``'exact'``
    float32 products with the targets, float64 Gram matrices and
    eigendecompositions. The default.
``'fast'``
    as ``'exact'``, but on CUDA the product that dominates the run time, the
    validation predictions of every alpha (whose sums of squares score the
    alphas), uses TF32 tensor cores (10 mantissa bits in the inputs, float32
    accumulation: about 1e-3 relative error in each prediction, far less in a
    sum of squares). Projections of the targets, the refit and the test-set
    predictions stay IEEE float32, because their errors would be amplified by
    ``1/(λ+α)`` along small-eigenvalue directions. On CPU it is ``'exact'``.
``'double'``
    everything in float64; a slow reference.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

from ..core.resources import memory_budget
from .options import PRECISIONS

#: Fraction of the free memory a run uses when ``mem_gb`` is not given.
CPU_MEMORY_FRACTION = 0.5
CUDA_MEMORY_FRACTION = 0.8


def resolve_device(device: str | torch.device) -> torch.device:
    """Turn ``'cpu'``, ``'cuda'``, ``'cuda:1'`` or ``'auto'`` into a usable :class:`torch.device`.

    ``'auto'`` is the first CUDA device when one is available, else the CPU.

    Raises
    ------
    ValueError
        A CUDA device is asked for and torch sees none (a CPU-only build of
        torch, no driver, or ``CUDA_VISIBLE_DEVICES`` empty), or the device
        string is not understood.
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}") from err
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={str(device)!r} was requested but CUDA is not available to torch "
                f"(torch {torch.__version__}, built with CUDA {torch.version.cuda}); "
                "use device='cpu' or device='auto'"
            )
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        if index >= torch.cuda.device_count():
            raise ValueError(f"device={str(device)!r}: only {torch.cuda.device_count()} CUDA device(s) visible")
        dev = torch.device("cuda", index)
    elif dev.type != "cpu":
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}")
    return dev


def check_precision(precision: str) -> str:
    """Validate a precision mode name (see the module docstring)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return precision


def compute_dtype(precision: str) -> torch.dtype:
    """dtype of the target-side products: float64 for ``'double'``, else float32."""
    return torch.float64 if check_precision(precision) == "double" else torch.float32


#: cgroup files holding a memory limit and the usage it counts (v2, then v1).
_CGROUP_FILES = (
    ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
    ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
)


def _cgroup_available_bytes(files=_CGROUP_FILES) -> int | None:
    """Bytes left under this process's cgroup memory limit (docker --memory, SLURM --mem), or None."""
    for limit_file, usage_file in files:
        try:
            limit = open(limit_file).read().strip()
            usage = int(open(usage_file).read().strip())
        except (OSError, ValueError):
            continue
        if limit == "max" or not limit.isdigit() or int(limit) >= 2**60:
            return None  # no limit set (v1 reports a huge number)
        return max(0, int(limit) - usage)
    return None


def _cpu_available_bytes() -> int:
    """RAM this process can still take: the host's available memory, capped by a cgroup limit."""
    host = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    host = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if host is None:
        try:
            host = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            host = 8 * 1024**3
    cgroup = _cgroup_available_bytes()
    return host if cgroup is None else min(host, cgroup)


def memory_budget_bytes(device: torch.device, mem_gb: float | None) -> int:
    """Bytes the engine may hold on ``device`` at once.

    ``mem_gb`` (GB = 1e9 bytes) wins when given; else a fraction of the memory
    that is free now: :data:`CUDA_MEMORY_FRACTION` of the GPU's free memory, or
    :data:`CPU_MEMORY_FRACTION` of the host's available RAM (the rule:
    :func:`bids_taskenc.core.resources.memory_budget`).
    """
    if device.type == "cuda":
        return memory_budget(mem_gb, lambda: torch.cuda.mem_get_info(device)[0], CUDA_MEMORY_FRACTION)
    return memory_budget(mem_gb, _cpu_available_bytes, CPU_MEMORY_FRACTION)


def _set_tf32(enabled: bool):
    matmul = torch.backends.cuda.matmul
    if hasattr(matmul, "fp32_precision"):
        old = matmul.fp32_precision
        matmul.fp32_precision = "tf32" if enabled else "ieee"
        return lambda: setattr(matmul, "fp32_precision", old)
    old = matmul.allow_tf32
    matmul.allow_tf32 = enabled
    return lambda: setattr(matmul, "allow_tf32", old)


@contextlib.contextmanager
def ieee_matmul(device: torch.device) -> Iterator[None]:
    """Within the block, float32 CUDA matmuls are IEEE float32 (no TF32), whatever the process set.

    The process-wide setting is restored on exit. CPU matmuls are never touched
    (torch may otherwise lower them to bf16 on some CPUs).
    """
    if device.type != "cuda":
        yield
        return
    restore = _set_tf32(False)
    try:
        yield
    finally:
        restore()


@contextlib.contextmanager
def tf32_matmul(device: torch.device, enabled: bool) -> Iterator[None]:
    """Within the block, float32 CUDA matmuls use TF32 iff ``enabled``; a no-op on CPU.

    Only changes a host-side flag: no device synchronisation.
    """
    if device.type != "cuda" or not enabled:
        yield
        return
    restore = _set_tf32(True)
    try:
        yield
    finally:
        restore()


def synchronize(device: torch.device) -> None:
    """Wait for queued work on ``device`` (for honest timings); a no-op on CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
