"""Featurization throughput: images/s per Taskonomy encoder and for all 21 together.

Timings include JPEG decoding (the pipeline's own thread pool) and exclude the
feature cache (``cache_dir=None``). Encoders get seeded random weights in
memory, so no download is needed; the arithmetic is the real architecture's.

    python benchmarks/featurize.py --quick                         # CPU smoke numbers
    python benchmarks/featurize.py --device cuda --n-images 4916 --batch-size 256 --workers 16 [--compile]
    python benchmarks/featurize.py --n-images 2 --tasks normal --single --json f.json   # seconds on a CPU
    python benchmarks/featurize.py --precision both --n-images 64 --tasks normal class_object   # CPU bf16 vs fp32

``--tasks`` picks the encoders run together (default the paper's 21), ``--single``
those also timed alone (none: ``--single`` with no names).

Goal (Neural Taskonomy scale): 21 encoders x 4,916 images in <= 10 s on one H100.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np


def make_jpegs(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """``n`` photo-sized (500x375) smooth-plus-noise JPEGs, like BOLD5000's stimuli."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:375, 0:500].astype(np.float32)

    def one(i: int) -> Path:
        r = np.random.default_rng(seed + i)
        base = 128 + 90 * np.sin(x / r.uniform(5, 40) + r.uniform(0, 6)) * np.cos(y / r.uniform(5, 40))
        img = np.stack([base, np.roll(base, 30, 1), 255 - base], -1) + r.normal(0, 12, (375, 500, 3))
        p = folder / f"img{i:05d}.jpg"
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(p, quality=90)
        return p

    del rng
    with ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        return list(pool.map(one, range(n)))


#: Rows kept by ``--sample-out`` to compare two runs (e.g. compiled and not).
SAMPLE_ROWS = 8


def min_row_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """The smallest Pearson r between a row of ``a`` and the same row of ``b`` (images x features)."""
    from bids_taskenc.encoding.stats import pearson_r

    return float(np.min(pearson_r(np.asarray(a).T, np.asarray(b).T)))


def compare_sample(sample: dict, ref_path: Path) -> dict:
    """Per encoder, the smallest correlation between a row of ``sample`` and the same row in ``ref_path``."""
    if not Path(ref_path).exists():
        return {"min_corr": None, "error": f"{ref_path} does not exist (the run to compare with failed?)"}
    ref = np.load(ref_path)
    per_space = {}
    for name, rows in sample.items():
        key = name if name in ref.files else None
        if key is None:
            continue
        per_space[name] = min_row_correlation(rows, ref[key][: len(rows)])
    missing = sorted(set(sample) - set(per_space))
    return {
        "min_corr": min(per_space.values()) if per_space else float("nan"),
        "per_space": per_space,
        "missing_in_ref": missing,
    }


def raise_recompile_limit(n: int) -> dict:
    """Let dynamo keep ``n`` compiled versions of the encoders' shared ``forward``.

    All encoders are one class, so their ``forward`` is one code object; with two
    batch shapes each, the default limit (8) would leave most of the 21 encoders
    running uncompiled, silently. Returns the old and new limits.
    """
    import torch._dynamo

    cfg = torch._dynamo.config
    info = {}
    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(cfg, name):
            old = getattr(cfg, name)
            setattr(cfg, name, max(int(old), int(n)))
            info[name] = {"old": old, "new": getattr(cfg, name)}
            break
    return info


def compile_counters() -> dict:
    """Graphs dynamo compiled and how often it fell back (from its own counters)."""
    try:
        from torch._dynamo.utils import counters
    except ImportError:
        return {}
    stats = dict(counters.get("stats", {}))
    return {
        "unique_graphs": stats.get("unique_graphs"),
        "calls_captured": stats.get("calls_captured"),
        "graph_breaks": sum(counters.get("graph_break", {}).values()),
        "recompile_limit_hits": sum(v for k, v in counters.get("frames", {}).items() if "limit" in str(k)),
    }


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def torch_sync(device: str) -> bool:
    """Wait for the device's queued work (CUDA); True when there was a device to wait for."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
        return True
    return False


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def time_precision(args, spaces, by_task, single, names, paths, bs, mode, got) -> dict:
    """Images/s of each encoder alone and of all together under ``mode`` (the app's --precision);
    the features of the all-together pass go into ``got[mode]``."""
    from bids_taskenc.features.pipeline import featurize
    from bids_taskenc.features.taskonomy import PAPER_TASKS

    def run(which):
        return featurize(
            which,
            names,
            paths,
            device=args.device,
            batch_size=bs,
            num_workers=args.workers,
            progress=False,
            precision=mode,
        )

    n, k = len(names), len(spaces)
    run(spaces[:1])  # warm-up of this mode's layout and kernels, not timed
    res: dict = {"precision": spaces[0].precision(args.device, mode), "single": {}}
    print(f"precision {mode}: {res['precision']}")
    for task in single:
        t = timed(lambda task=task: (run([by_task[task]]), torch_sync(args.device)))
        res["single"][task] = round(n / t, 2)
        print(f"  {task:18s} alone:      {n / t:8.2f} img/s  ({t:.2f} s)")
    feats: dict = {}
    t_all = timed(lambda: (feats.update(run(spaces)), torch_sync(args.device)))
    got[mode] = feats
    res["all_seconds"] = round(t_all, 3)
    res["all_img_per_s"] = round(n / t_all, 2)
    res["all_encoder_img_per_s"] = round(k * n / t_all, 1)
    res["all_extrapolated_4916_s"] = round(t_all * 4916 / n, 2)
    if k == len(PAPER_TASKS):  # the names earlier runs wrote
        res["all21_seconds"] = res["all_seconds"]
        res["all21_img_per_s"] = res["all_img_per_s"]
        res["all21_encoder_img_per_s"] = res["all_encoder_img_per_s"]
        res["all21_extrapolated_4916_s"] = round(t_all * 4916 / n, 1)
    print(
        f"all {k} together: {t_all:.2f} s for {n} images = {n / t_all:.2f} img/s "
        f"({k * n / t_all:.1f} encoder-images/s); extrapolated to 4,916 images: {t_all * 4916 / n:.1f} s"
    )
    return res


def compare_precisions(exact: dict, fast: dict, got: dict) -> dict:
    """Speed-ups of the fast path over the exact one and the smallest per-image feature correlation."""
    ratios = [fast["single"][t] / exact["single"][t] for t in exact["single"]]
    corrs = [min_row_correlation(a, got["fast"][name]) for name, a in got["exact"].items()]
    return {
        "fast_precision": fast["precision"],
        "speedup_all": round(exact["all_seconds"] / fast["all_seconds"], 2),
        "speedup_single_median": round(float(np.median(ratios)), 2) if ratios else None,
        "min_corr": round(min(corrs), 6),
    }


def parse(argv) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--quick", action="store_true", help="few images, 2 encoders alone (CPU smoke run)")
    ap.add_argument("--n-images", type=int, help="images (default: 4 quick, 4916 otherwise)")
    ap.add_argument("--image-dir", type=Path, help="use these JPEGs instead of synthetic ones")
    ap.add_argument("--batch-size", type=int, default=None, help="default 4 on CPU, 256 on CUDA")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="decode threads")
    ap.add_argument("--single", nargs="*", default=None, help="encoders timed alone (default: 2 quick, all otherwise)")
    ap.add_argument(
        "--tasks",
        nargs="+",
        default=None,
        help="encoders timed together (default: the paper's 21; fewer for CPU smoke runs)",
    )
    ap.add_argument("--compile", action="store_true", help="torch.compile each encoder (CUDA)")
    ap.add_argument(
        "--precision",
        choices=("exact", "fast", "both"),
        default="exact",
        help="the app's --precision (fast: bf16 on a CPU with native bf16); both: time each and print the ratio "
        "and the features' correlation",
    )
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument(
        "--sample-out", type=Path, help=f"save each encoder's features of the first {SAMPLE_ROWS} images (.npz)"
    )
    ap.add_argument(
        "--sample-ref",
        type=Path,
        help="compare them with a --sample-out file of another run (e.g. --compile against plain)",
    )
    return ap, ap.parse_args(argv)


def warm_up(args, spaces, names, paths, bs: int) -> float:
    """Untimed in the results: weights to the device, cuDNN autotuning, torch.compile.

    Its images give one full batch and one of the timed run's last, shorter size, so neither a
    recompilation nor a new autotuning lands in the timed passes. Returns its seconds.
    """
    from bids_taskenc.features.pipeline import featurize

    n = len(names)
    n_warm = min(n, bs + (n % bs if n > bs else 0))
    print(f"warm-up on {n_warm} images{' (torch.compile of each encoder)' if args.compile else ''} ...", flush=True)

    def run():
        kw = dict(device=args.device, batch_size=bs, num_workers=args.workers, progress=False)
        featurize(spaces, names[:n_warm], paths[:n_warm], **kw)
        sync(args.device)

    return timed(run)


def finish(args, res: dict, modes: list[str], got: dict, compile_info) -> None:
    """The precision comparison, dynamo's counters, and the feature sample saved or compared."""
    res.update(res[modes[-1]])  # the top-level names earlier runs wrote, from the last mode timed
    if len(modes) == 2:
        res["precision_comparison"] = compare_precisions(res["exact"], res["fast"], got)
        c = res["precision_comparison"]
        print(
            f"fast ({c['fast_precision']}) / exact (fp32): {c['speedup_all']}x for all together, "
            f"{c['speedup_single_median']}x median alone; features min per-image correlation {c['min_corr']}"
        )
    if compile_info is not None:  # after every pass: a compilation in a timed pass shows here
        res["compile_info"] = {**compile_info, **compile_counters()}
    sample = {name: feats[:SAMPLE_ROWS] for name, feats in got[modes[-1]].items()}
    if args.sample_out:
        args.sample_out.parent.mkdir(parents=True, exist_ok=True)
        np.savez(args.sample_out, **sample)
    if args.sample_ref:
        res["sample_vs_ref"] = compare_sample(sample, args.sample_ref)
        print(
            f"features of the first {SAMPLE_ROWS} images vs {args.sample_ref.name}: "
            f"min correlation {res['sample_vs_ref']['min_corr']} over {len(sample)} encoders"
        )


def measure(ap, args, paths: list[Path]) -> dict:
    """Warm-up, decode alone, then each precision's timed passes over ``paths``; the results."""
    import torch

    from bids_taskenc.features.images import decode
    from bids_taskenc.features.taskonomy import PAPER_TASKS, TaskonomyFeatureSpace

    n, names = len(paths), [p.name for p in paths]
    bs = args.batch_size or (256 if args.device.startswith("cuda") else 4)
    single = args.single if args.single is not None else (["normal", "class_object"] if args.quick else PAPER_TASKS)
    tasks = list(args.tasks) if args.tasks else list(PAPER_TASKS)
    unknown = sorted(set(tasks) - set(PAPER_TASKS))
    if unknown:
        ap.error(f"not among the paper's tasks: {', '.join(unknown)}")
    spaces = [TaskonomyFeatureSpace.random(t, seed=PAPER_TASKS.index(t)) for t in tasks]
    for s in spaces:
        s.compile = args.compile
    compile_info = raise_recompile_limit(4 * len(spaces)) if args.compile else None
    by_task = {s.task: s for s in spaces}
    t_warm = warm_up(args, spaces, names, paths, bs)
    with ThreadPoolExecutor(args.workers) as pool:
        t_dec = timed(lambda: list(pool.map(lambda p: decode(p, (256,)), paths)))
    res = {
        "device": args.device,
        "torch": torch.__version__,
        "n_images": n,
        "batch_size": bs,
        "workers": args.workers,
        "compile": args.compile,
        "warmup_s": round(t_warm, 2),
        "decode_only_img_per_s": round(n / t_dec, 1),
    }
    if args.device.startswith("cuda"):
        res["gpu"] = torch.cuda.get_device_name()
    print(
        f"device {args.device}  torch {torch.__version__}  images {n}  batch {bs}  workers {args.workers}"
        f"  threads {torch.get_num_threads()}"
    )
    print(f"decode only (PIL, {args.workers} threads): {n / t_dec:8.1f} img/s")
    unknown = sorted(set(single) - set(by_task))
    if unknown:
        ap.error(f"--single {', '.join(unknown)}: not among --tasks")
    modes = ["exact", "fast"] if args.precision == "both" else [args.precision]
    got: dict = {}
    for mode in modes:
        res[mode] = time_precision(args, spaces, by_task, list(single), names, paths, bs, mode, got)
    finish(args, res, modes, got, compile_info)
    return res


def main(argv=None) -> int:
    ap, args = parse(argv)
    n = args.n_images or (4 if args.quick else 4916)
    with tempfile.TemporaryDirectory() as tmp:
        if args.image_dir:
            paths = sorted(p for p in args.image_dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:n]
        else:
            paths = make_jpegs(Path(tmp) / "img", n)
        res = measure(ap, args, paths)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=2))
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
