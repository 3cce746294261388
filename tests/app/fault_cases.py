"""The cases of issue 13 as a table: exit code and the line a user sees, one row per case.

Not a test: run it against any checkout to compare behaviours, e.g.

    PYTHONPATH=. python -m tests.app.fault_cases /tmp/cases

(``PYTHONPATH=<old checkout>`` for the behaviour before). Each case breaks a
copy of a small two-participant synthetic dataset in one way.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import pickle
import shutil
import stat
import sys
import traceback
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from bids_taskenc.cli.run import main
from bids_taskenc.testing import make_synthetic_dataset

FAST = ["--feature-spaces", "user:scene3da", "--contrast-bootstrap", "0", "--no-reports", "--cv-folds", "3"]


def _bold(root, sub="CSI1"):
    return sorted((root / "bids/derivatives/fmriprep" / f"sub-{sub}/ses-01/func").glob("*_desc-preproc_bold.nii.gz"))[0]


def _brainmask(root):
    return sorted((root / "bids/derivatives/fmriprep/sub-CSI1/ses-01/func").glob("*_desc-brain_mask.nii.gz"))[0]


def _annex(path):
    path.unlink()
    os.symlink(f"../../../.git/annex/objects/Xk/9P/SHA256E-s1--a{''.join(path.suffixes)}/x", path)


def _digest(folder):
    """Every entry under ``folder`` -> its content's sha256 (or link target), to see whether a run wrote inputs."""
    import hashlib

    return {
        p.relative_to(folder).as_posix(): os.readlink(p)
        if p.is_symlink()
        else hashlib.sha256(p.read_bytes()).hexdigest()
        if p.is_file()
        else "dir"
        for p in sorted(Path(folder).rglob("*"))
    }


def _run(root, *extra, level="participant", out=None):
    bids = root / "bids"
    argv = [str(bids), str(out or root / "out"), level]
    if level == "participant":
        argv += ["--features-dir", str(bids / "derivatives/features"), "--work-dir", str(root / "work"), *FAST]
    else:
        argv += ["--offline", "--n-bootstrap", "20", "--group-permutations", "50", "--no-reports"]
    err = io.StringIO()
    before = _digest(bids)
    with contextlib.redirect_stderr(err):
        try:
            code = main([*argv, *map(str, extra)])
        except BaseException as exc:  # noqa: BLE001 - the behaviour being recorded
            traceback.print_exception(exc, file=err)
            code = f"raised {type(exc).__name__}"
    after = _digest(bids)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    if changed:
        return code, f"INPUT CHANGED ({len(changed)} entries, e.g. {changed[0]})\n" + err.getvalue()
    return code, err.getvalue()


def _line(err: str, *keys: str) -> str:
    lines = err.splitlines()
    if "Traceback (most recent call last)" in err:
        return "TRACEBACK: " + next((ln for ln in reversed(lines) if ln.strip()), "")
    for key in keys:
        hit = [ln for ln in lines if key in ln]
        if hit:
            return hit[0]
    return lines[-1] if lines else ""


def _shifted(path, out, shift=0.0, zoom=1.0):
    img = nib.load(path)
    affine = img.affine.copy()
    affine[:3, :3] *= zoom
    affine[:3, 3] += shift
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj), affine), out)
    return out


def case_truncated(root):
    bold = _bold(root)
    bold.write_bytes(bold.read_bytes()[: bold.stat().st_size // 2])
    return _run(root), ("sub-CSI1: FAILED",)


def case_corrupt(root):
    _bold(root).write_bytes(b"not a nifti" * 50)
    return _run(root), ("sub-CSI1: FAILED",)


def case_onset(root):
    ev = sorted((root / "bids/sub-CSI1").rglob("*5000scenes*_events.tsv"))[0]
    t = pd.read_csv(ev, sep="\t")
    t["onset"] = t["onset"].astype(object)
    t.loc[3, "onset"] = "12.5s"
    t.to_csv(ev, sep="\t", index=False)
    return _run(root), ("sub-CSI1: FAILED",)


def case_output_file(root):
    (root / "out").write_text("x")
    return _run(root), ("error",)


def case_toml(text):
    def case(root):
        (root / "c.toml").write_text(text + "\n")
        return _run(root, "--config", root / "c.toml"), ("error",)

    return case


def case_full_disk(root):
    real = nib.save

    def full(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    nib.save = full
    try:
        return _run(root), ("sub-CSI1: FAILED", "error")
    finally:
        nib.save = real


def case_mask(shift=0.0, zoom=1.0):
    def case(root):
        user = _shifted(_brainmask(root), root / "m.nii.gz", shift, zoom)
        return _run(root, "--mask", user), ("sub-CSI1: FAILED", "error", "succeeded")

    return case


def case_brainmask(root):
    mask = _brainmask(root)
    _shifted(mask, mask, 30.0)
    return _run(root), ("sub-CSI1: FAILED", "error", "succeeded")


def case_labels(root):
    f = root / "bids/derivatives/features"
    shutil.copytree(f / "edge2da", f / "edge-2da")
    return _run(root, "--feature-spaces", "user:edge2da", "user:edge-2da"), ("error", "FAILED", "succeeded")


def case_overflow(root):
    p = root / "bids/derivatives/features/scene3da/features.npy"
    x = np.load(p).astype(np.float64)
    x[5, 2] = 1e200
    np.save(p, x)
    return _run(root), ("sub-CSI1: FAILED", "error")


def case_constant(root):
    p = root / "bids/derivatives/features/scene3da/features.npy"
    np.save(p, np.ones_like(np.load(p)))
    return _run(root), ("constant", "succeeded")


def case_annex(which):
    def case(root):
        path = {
            "bold": _bold(root),
            "mask": _brainmask(root),
            "events": sorted((root / "bids/sub-CSI1").rglob("*5000scenes*_events.tsv"))[-1],
        }[which]
        _annex(path)
        return _run(root), ("sub-CSI1: FAILED", "error")

    return case


def case_option(*opt):
    def case(root):
        return _run(root, *opt), ("error", "FAILED")

    return case


def case_pickle(root):
    code, err = _run(root)
    marker = root / "owned"

    class Planted:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    for p in (root / "work/cache").rglob("*"):
        if p.is_file():
            p.write_bytes(pickle.dumps(Planted()))
    code, err = _run(root)
    return (code, f"planted pickle executed: {marker.exists()}; " + _line(err, "unusable", "succeeded")), ()


def case_modes(root):
    old = os.umask(0o022)
    try:
        code, err = _run(root)
    finally:
        os.umask(old)
    modes = sorted(
        {oct(stat.S_IMODE(p.stat().st_mode)) for d in ("out", "work") for p in (root / d).rglob("*") if p.is_file()}
    )
    return (code, f"file modes under umask 022: {', '.join(modes)}"), ()


def _group_files(root):
    out = root / "out"
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in out.rglob("*")
        if p.is_file() and (p.relative_to(out).parts[0] == "group" or "_matrix." in p.name)
    }


THREE = ["--feature-spaces", "user:scene3da", "user:edge2da", "user:random"]


def case_group_fewer(root):
    _run(root, *THREE)
    _run(root, level="group")
    code, err = _run(root, "--participant-label", "CSI1", "--allow-one-participant", level="group")
    stale = [k for k in _group_files(root) if "consistency" in k or k.startswith("sub-CSI2/")]
    return (code, f"{len(stale)} files of the older group run left: {', '.join(stale[:2])}"), ()


def case_group_killed(root):
    from bids_taskenc.group import graph

    _run(root, *THREE)
    _run(root, level="group")
    before = _group_files(root)
    real = graph.graphml_text  # written after the matrices and the tree: a kill mid-write

    def killed(*a, **k):
        raise KeyboardInterrupt

    graph.graphml_text = killed
    try:
        code, err = _run(root, "--n-bootstrap", "30", level="group")
    finally:
        graph.graphml_text = real
    after = _group_files(root)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    return (code, f"{len(changed)} group files changed by the killed run"), ()


def case_output_is_input(folder):
    def case(root):
        return _run(root, out=root / "bids" / folder), ("INPUT CHANGED", "error", "succeeded")

    return case


def case_work_in_bids(root):
    return _run(root, "--work-dir", root / "bids" / "work"), ("INPUT CHANGED", "error", "succeeded")


def case_rerun_other_spaces(root):
    _run(root, *THREE)
    before = sorted(p.name for p in (root / "out/sub-CSI2/func").iterdir())
    code, err = _run(root, "--participant-label", "CSI2", "--feature-spaces", "user:scene3db")
    after = sorted(p.name for p in (root / "out/sub-CSI2/func").iterdir())
    return (code, f"sub-CSI2/func: {len(before)} files before, {len(after)} after the rerun"), ()


def case_rerun_other_seed(root):
    _run(root, *THREE)
    return _run(root, "--participant-label", "CSI2", "--feature-spaces", "user:edge2da", "--seed", "7"), (
        "error",
        "succeeded",
    )


def case_group_one(root):
    _run(root, *THREE)
    return _run(root, "--participant-label", "CSI1", level="group"), ("error", "wrote")


CASES = {
    "truncated .nii.gz (sub-CSI1 of 2)": case_truncated,
    "corrupt NIfTI (sub-CSI1 of 2)": case_corrupt,
    "non-numeric onset (sub-CSI1 of 2)": case_onset,
    "output_dir is a file": case_output_file,
    "TOML alphas = 10": case_toml("alphas = 10"),
    "TOML seed = 1.5": case_toml("seed = 1.5"),
    "full disk while writing": case_full_disk,
    "--mask shifted 30 mm": case_mask(shift=30.0),
    "--mask 2x voxel size": case_mask(zoom=2.0),
    "brain mask shifted 30 mm": case_brainmask,
    "labels user:edge2da + user:edge-2da": case_labels,
    "feature value 1e200": case_overflow,
    "feature space all constant": case_constant,
    "annexed BOLD (sub-CSI1 of 2)": case_annex("bold"),
    "annexed brain mask (sub-CSI1 of 2)": case_annex("mask"),
    "annexed events (sub-CSI1 of 2)": case_annex("events"),
    "--mem-gb -1": case_option("--mem-gb", "-1"),
    "--mem 0": case_option("--mem", "0"),
    "--mem 16XB": case_option("--mem", "16XB"),
    "--mask missing.nii.gz": case_option("--mask", "missing.nii.gz"),
    "planted pickles in the work cache": case_pickle,
    "file modes": case_modes,
    "group rerun over fewer participants": case_group_fewer,
    "group killed midway": case_group_killed,
    "output_dir = derivatives/fmriprep": case_output_is_input("derivatives/fmriprep"),
    "output_dir = derivatives/spm (ROI masks)": case_output_is_input("derivatives/spm"),
    "--work-dir inside the BIDS dataset": case_work_in_bids,
    "rerun sub-CSI2 with one other space": case_rerun_other_spaces,
    "rerun sub-CSI2 with another --seed": case_rerun_other_seed,
    "group over one participant": case_group_one,
}


# === issue 24, inputs (helper `inputs`): bad inputs refused by name before any work ==========================


def _events(root, run=0):
    return sorted((root / "bids/sub-CSI1").rglob("*5000scenes*_events.tsv"))[run]


def case_same_name_two_folders(root):
    stim = sorted((root / "bids/stimuli").iterdir())
    (root / "bids/stimuli/other").mkdir()
    shutil.copy(stim[1], root / "bids/stimuli/other" / stim[0].name)  # another image under the first one's name
    ev = _events(root)
    t = pd.read_csv(ev, sep="\t")
    t.loc[0, "stim_file"] = f"other/{stim[0].name}"
    t.to_csv(ev, sep="\t", index=False)
    return _run(root, "--feature-spaces", "baseline:pixels"), ("sub-CSI1: FAILED", "error", "succeeded")


def case_duplicated_row(root):
    ev = _events(root)
    lines = ev.read_text().splitlines(keepends=True)
    ev.write_text("".join(lines[:4] + [lines[3]] + lines[4:]))
    return _run(root), ("sub-CSI1: FAILED", "error", "succeeded")


def case_sidecar_tr(value):
    def case(root):
        (root / "bids/task-5000scenes_bold.json").write_text(f'{{"TaskName": "5000scenes", "RepetitionTime": {value}}}')
        return _run(root), ("error", "FAILED", "succeeded")

    return case


def case_events_same_size_and_time(root):
    _run(root)
    before = len(list((root / "work/cache/responses").iterdir()))
    ev = _events(root)
    st = ev.stat()
    t = pd.read_csv(ev, sep="\t", dtype=str, keep_default_na=False)
    n = t["stim_file"].str.len()
    i, j = next((a, b) for a in range(len(t)) for b in range(a + 1, len(t)) if n[a] == n[b])
    for col in ("ImgName", "stim_file"):
        t.loc[[i, j], col] = t.loc[[j, i], col].to_numpy()
    with open(ev, "r+") as fh:
        fh.write(t.to_csv(sep="\t", index=False, lineterminator="\n"))
    os.utime(ev, ns=(st.st_atime_ns, st.st_mtime_ns))
    code, err = _run(root)
    new = len(list((root / "work/cache/responses").iterdir())) - before
    return (code, f"sub-CSI1's events edited: {new} new responses entry (0 = stale results served)"), ()


def case_features(kind):
    def case(root):
        p = root / "bids/derivatives/features/scene3da/features.npy"
        x = np.load(p)
        np.save(p, {"complex": x + 1j * x, "no columns": x[:, :0]}[kind])
        return _run(root), ("sub-CSI1: FAILED", "error", "succeeded")

    return case


def case_space_json(root):
    (root / "bids/derivatives/features/scene3da/space.json").write_text("[1, 2]")
    return _run(root), ("error", "FAILED", "succeeded")


def case_config_bytes(content):
    def case(root):
        (root / "c.toml").write_bytes(content)
        return _run(root, "--config", root / "c.toml"), ("error",)

    return case


def case_zero_run(root):
    bold = sorted((root / "bids/derivatives/fmriprep/sub-CSI1/ses-01/func").glob("*_desc-preproc_bold.nii.gz"))[1]
    img = nib.load(bold)
    nib.save(nib.Nifti1Image(np.zeros(img.shape, np.float32), img.affine, img.header), bold)
    return _run(root), ("sub-CSI1: FAILED", "error")


def case_readonly_work(root):
    work = root / "work"
    work.mkdir()
    real_open, real_mkdir = os.open, os.mkdir

    def ro(real):
        def call(path, *a, **k):
            if str(path).startswith(str(work)):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
            return real(path, *a, **k)

        return call

    os.open, os.mkdir = ro(real_open), ro(real_mkdir)
    try:
        return _run(root), ("sub-CSI1: FAILED", "error")
    finally:
        os.open, os.mkdir = real_open, real_mkdir


def case_mem_too_small(root):
    from bids_taskenc.workflow import resources

    real = resources.rss_bytes
    resources.rss_bytes = lambda: 10**9  # the process holds 1 GB
    try:
        return _run(root, "--mem", "1050M"), ("sub-CSI1: FAILED", "error")
    finally:
        resources.rss_bytes = real


CASES.update(
    {
        "one file name in two stimulus folders": case_same_name_two_folders,
        "duplicated events row": case_duplicated_row,
        "sidecar TR 1.0, header 2.0": case_sidecar_tr("1.0"),
        'RepetitionTime "abc"': case_sidecar_tr('"abc"'),
        "RepetitionTime 0": case_sidecar_tr("0"),
        "events edited, same size and time": case_events_same_size_and_time,
        "complex features": case_features("complex"),
        "features with 0 columns": case_features("no columns"),
        "space.json an array": case_space_json,
        "--config not UTF-8": case_config_bytes(b"seed = 1\n# caf\xe9\n"),
        "--config nested 3000 deep": case_config_bytes(b"alphas = " + b"[" * 3000 + b"]" * 3000),
        "run-02 all zeros": case_zero_run,
        "read-only work folder": case_readonly_work,
        "--mem 1050M with 1 GB held": case_mem_too_small,
    }
)


def run_cases(base: Path) -> None:
    base = Path(base)
    template = base / "template"
    if not template.exists():
        make_synthetic_dataset(
            template,
            n_participants=2,
            n_sessions=1,
            runs_per_session=2,
            trials_per_run=16,
            n_repeated=2,
            shape=(10, 10, 8),
            seed=4,
        )
    print("| case | exit | what the user sees |\n|---|---|---|")
    for i, (name, case) in enumerate(CASES.items()):
        if len(sys.argv) > 2 and not any(k in name for k in sys.argv[2:]):
            continue
        root = base / f"case{i}"
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(template, root, symlinks=True)
        (code, err), keys = case(root)
        line = _line(err, *keys) if keys else err
        line = line.replace(str(root), "…")
        print(f"| {name} | {code} | {line[:160]} |", flush=True)


if __name__ == "__main__":
    run_cases(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/fault_cases"))
