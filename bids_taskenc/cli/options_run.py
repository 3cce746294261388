"""Options of the command line, part 3: running (folders, seed, device, resources, logging), reports, clusters;
``--mem``'s units."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from ..workflow.settings import DEVICES, FitSettings, OutputSettings, ResourceSettings
from .choices import default_of


def add_running_options(p: argparse.ArgumentParser) -> None:
    """Options: where and how the run computes."""
    run = p.add_argument_group("running")
    run.add_argument(
        "--work-dir",
        "-w",
        type=Path,
        default=default_of(OutputSettings, "work_dir"),
        help="intermediate results and caches (features, responses)",
    )
    run.add_argument(
        "--seed", type=int, default=default_of(FitSettings, "seed"), help="seed of the split, folds and permutations"
    )
    run.add_argument(
        "--device",
        choices=list(DEVICES),
        default=default_of(ResourceSettings, "device"),
        help="where featurization and ridge run (auto: CUDA when available, else CPU)",
    )
    run.add_argument(
        "--nprocs",
        "--n-cpus",
        type=int,
        metavar="N",
        help="parallel workers (image decode threads, runs read at once); default: the CPUs this process may use",
    )
    run.add_argument(
        "--omp-nthreads",
        type=int,
        metavar="N",
        help="threads of one computation: torch and BLAS (OpenMP/MKL/OpenBLAS); default: the libraries' own choice",
    )
    run.add_argument(
        "--mem",
        "--mem-mb",
        dest="mem",
        type=_mem_arg,
        metavar="MB",
        help="memory ceiling of a participant on the CPU (runs read at once, noise ceiling, each fit's "
        "voxel batches; on a GPU: the fit's device memory), in MB as fMRIPrep's --mem (16000), "
        "or with a unit: "
        "16GB, 16G, 500MB, 500M, 1TB (decimal units: 1 GB = 1000 MB); default: a share of the "
        "free (GPU) memory",
    )
    run.add_argument(
        "--replace-outputs",
        action="store_true",
        help="participant level: replace each participant's earlier outputs (every map of every space) instead of "
        "adding this run's spaces to them; needed when the shared settings (responses, split, seed, mask, FDR "
        "level) differ from those of the earlier maps (docs/output-safety.md)",
    )
    run.add_argument("--stop-on-first-crash", action="store_true", help="stop at the first failing participant")
    run.add_argument("--config", type=Path, metavar="FILE", help="TOML file of options; the command line wins")
    run.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    run.add_argument(
        "-q",
        "--quiet",
        action="count",
        default=0,
        help="less output: no progress bars nor progress lines (-qq: errors only)",
    )


def add_report_options(p: argparse.ArgumentParser) -> None:
    """Options: reports and citation files."""
    rep = p.add_argument_group(
        "reports",
        "HTML reports (sub-X.html after each participant, group.html after the group level) and "
        "logs/CITATION.{md,html,bib} are written from the outputs after every run",
    )
    only = rep.add_mutually_exclusive_group()
    only.add_argument(
        "--reports-only",
        action="store_true",
        help="rebuild the reports and citation files of this level from the existing outputs; fit nothing",
    )
    only.add_argument(
        "--boilerplate-only",
        action="store_true",
        help="write only logs/CITATION.{md,html,bib} from the existing outputs",
    )
    only.add_argument(
        "--no-reports",
        action="store_true",
        help="write no reports or citation files (build them later with --reports-only)",
    )
    rep.add_argument(
        "--pycortex-subject",
        nargs="+",
        metavar="NAME",
        help="pycortex subject for flatmaps: one NAME for every participant, or LABEL=NAME pairs; "
        "default: a subject named sub-<label> or <label> in the pycortex filestore. Needs "
        "the optional 'flatmaps' extra (pycortex)",
    )
    rep.add_argument(
        "--pycortex-xfm",
        metavar="NAME",
        help="pycortex transform from the maps' grid to the subject's anatomy; default: the subject's only transform",
    )


def add_cluster_options(p: argparse.ArgumentParser) -> None:
    """Options: running many jobs over one dataset (BABS, DataLad, SLURM arrays; docs/clusters.md)."""
    grp = p.add_argument_group("clusters", "many jobs over one dataset: BABS, DataLad, SLURM arrays (docs/clusters.md)")
    grp.add_argument(
        "--bids-database-dir",
        type=Path,
        metavar="DIR",
        help="pybids index of the dataset, read when there and written there otherwise, so the jobs of an "
        "array share one index instead of each indexing the dataset (as fMRIPrep's)",
    )
    grp.add_argument(
        "--clean-workdir",
        action="store_true",
        help="empty --work-dir before the run (never while other jobs use the same work dir: the feature cache "
        "is shared)",
    )
    grp.add_argument(
        "--resource-monitor",
        action="store_true",
        help="sample this run's memory and CPU use every second into logs/resources-<time>.tsv; the peaks go "
        "to the run log",
    )


_MEM_UNITS = {"": 1.0, "K": 1e-3, "KB": 1e-3, "M": 1.0, "MB": 1.0, "G": 1e3, "GB": 1e3, "T": 1e6, "TB": 1e6}


def parse_mem(text) -> float:
    """``--mem`` value -> megabytes: a plain number is MB (fMRIPrep), else a unit K/M/G/T with optional B.

    ``16GB`` and ``16G`` -> 16000.0, ``500M`` -> 500.0, ``16000`` -> 16000.0. Raises ``ValueError``
    (argparse turns it into a usage error) for anything else or a value that is not > 0.
    """
    import re

    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value, unit = float(text), ""
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]*)\s*", str(text))
        if not m or m.group(2).upper() not in _MEM_UNITS:
            raise ValueError(f"{text!r}: expected MB or a number with a unit (16GB, 16G, 500MB, 500M)")
        value, unit = float(m.group(1)), m.group(2).upper()
    mb = value * _MEM_UNITS[unit]
    if not (mb > 0 and math.isfinite(mb)):
        raise ValueError(f"{text!r}: the memory budget must be > 0")
    return mb


def _mem_arg(text) -> float:
    try:
        return parse_mem(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


_mem_arg.__name__ = "memory"
