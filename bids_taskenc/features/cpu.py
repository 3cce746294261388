"""Which numeric precision an encoder runs in on the CPU, and whether this CPU does bf16 natively.

Under ``--precision fast`` the Taskonomy encoders run channels-last under bf16 autocast on a CPU
that has bf16 instructions (x86: AVX512-BF16 or AMX-BF16; Arm: the BF16 extension): about twice
the images a second of exact fp32, with features that correlate >= 0.999 with it
(``tests/features/test_features_cpu_precision.py``, ``benchmarks/featurize.py --precision both``).
Where bf16 would be emulated (older CPUs) it is slower than fp32, so those CPUs keep the exact
path. ``BIDS_TASKENC_CPU_BF16=0`` (or ``1``) overrides the detection; the precision used is
recorded per feature space (``provenance['precision']``, the sidecars) and is part of the
feature cache key, so bf16 and fp32 rows never mix.
"""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path

#: Precision names, as recorded in the sidecars and the feature cache key.
FP32 = "fp32"
BF16_CUDA = "bf16-autocast"
BF16_CPU = "bf16-autocast-cpu"

#: /proc/cpuinfo flags that mean native bf16 arithmetic (x86 'flags', Arm 'Features').
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})

#: The run's ``--precision`` as the feature layer reads it: ``exact`` keeps encoders in fp32 on the CPU,
#: ``fast`` lets the Taskonomy encoders run in bf16 where the CPU has native bf16; any other mode (the
#: encoding layer's ``double``) is exact here. The default of every ``mode`` argument in ``features/``.
EXACT = "exact"
FAST = "fast"

#: Environment variable that overrides the detection: "1" forces bf16 on the CPU, "0" forbids it.
OVERRIDE_ENV = "BIDS_TASKENC_CPU_BF16"


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU feature flags the kernel reports (empty where there is no /proc/cpuinfo)."""
    try:
        text = Path(cpuinfo).read_text(encoding="ascii", errors="replace")
    except OSError:
        return frozenset()
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags.update(value.split())
    return frozenset(flags)


@functools.lru_cache(maxsize=1)
def _detected_native_bf16() -> bool:
    return platform.system() == "Linux" and bool(cpu_flags() & NATIVE_BF16_FLAGS)


def native_bf16() -> bool:
    """True when this CPU computes bf16 natively (or ``BIDS_TASKENC_CPU_BF16=1``)."""
    override = os.environ.get(OVERRIDE_ENV, "").strip()
    if override in ("0", "1"):
        return override == "1"
    return _detected_native_bf16()


def encoder_precision(device: str, mode: str = EXACT) -> str:
    """The precision an encoder runs in: bf16 autocast on CUDA (always, as before), on the CPU only
    with ``mode='fast'`` on a CPU with native bf16, else fp32.

    >>> encoder_precision("cpu", "exact")
    'fp32'
    >>> encoder_precision("cuda:0", "exact")
    'bf16-autocast'
    """
    if str(device).startswith("cuda"):
        return BF16_CUDA
    if mode == FAST and str(device) == "cpu" and native_bf16():
        return BF16_CPU
    return FP32
