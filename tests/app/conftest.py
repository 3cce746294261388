"""Shared synthetic datasets and whole-app runs for the app-level tests.

The datasets are made once per session; tests that break a dataset copy it first.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bids_taskenc.cli.run import main
from bids_taskenc.testing import make_synthetic_dataset


def run_app(*argv) -> int:
    return main([str(a) for a in argv])


@pytest.fixture(scope="session")
def modern_dataset(tmp_path_factory):
    """Two participants, modern fMRIPrep names, stimuli in bids/stimuli."""
    return make_synthetic_dataset(tmp_path_factory.mktemp("modern"), n_participants=2, seed=0)


@pytest.fixture(scope="session")
def modern_run(modern_dataset, tmp_path_factory):
    """Participant + group level on the modern dataset; returns (dataset, output dir)."""
    ds = modern_dataset
    out = ds.bids_dir / "derivatives" / "bids_taskenc"
    work = tmp_path_factory.mktemp("work")
    code = run_app(
        ds.bids_dir, out, "participant", "--features-dir", ds.features_dir, "--work-dir", work, "--seed", "0"
    )
    assert code == 0
    code = run_app(ds.bids_dir, out, "group", "--offline", "--n-bootstrap", "100")
    assert code == 0
    return ds, out


@pytest.fixture(scope="session")
def pair_dataset(tmp_path_factory):
    """Two small participants (the second must go on when the first breaks; reruns and the group level)."""
    return make_synthetic_dataset(
        tmp_path_factory.mktemp("pair"),
        n_participants=2,
        n_sessions=1,
        runs_per_session=2,
        trials_per_run=16,
        n_repeated=2,
        shape=(10, 10, 8),
        seed=4,
    )


@pytest.fixture
def pair(pair_dataset, tmp_path):
    """A private copy of the two-participant dataset's folder tree (BIDS dir at ``copy/bids``)."""
    root = tmp_path / "copy"
    shutil.copytree(pair_dataset.bids_dir.parent, root, symlinks=True)
    return root


def files_under(folder: Path) -> list[Path]:
    return [p for p in Path(folder).rglob("*") if p.is_file()] if Path(folder).exists() else []


def derivatives_under(folder: Path) -> list[Path]:
    """The files under ``folder`` except the run's own records (run logs, crash files in ``logs/``)."""
    from bids_taskenc.outputs.logs import crash_files, run_logs

    records = set(run_logs(folder)) | set(crash_files(folder))
    return [p for p in files_under(folder) if p not in records]


def tree_digest(folder: Path, exclude=()) -> dict[str, str]:
    """Every entry under ``folder``: relative path -> its content's sha256 (a file), link target or 'dir', with
    its mode; what a run must leave exactly as it found in its inputs. Entries under ``exclude`` (the run's own
    output and work folders inside ``derivatives/``) are left out."""
    import hashlib
    import os
    import stat

    digest = {}
    skip = [Path(e).resolve() for e in exclude]
    for path in sorted(Path(folder).rglob("*")):
        if any(path.resolve() == e or e in path.resolve().parents for e in skip):
            continue
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            kind = "link " + os.readlink(path)
        elif stat.S_ISDIR(info.st_mode):
            kind = "dir"
        else:
            kind = hashlib.sha256(path.read_bytes()).hexdigest()
        digest[path.relative_to(folder).as_posix()] = f"{kind} {oct(stat.S_IMODE(info.st_mode))}"
    return digest
