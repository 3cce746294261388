"""What BABS, DataLad and SLURM arrays need: filters, a shared index, -q, progress bars, clean work dirs."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from bids_taskenc.bids.dataset import Selection, open_layout, select_runs
from bids_taskenc.bids.filters import load_bids_filters
from bids_taskenc.bids.preprocessed import find_preprocessed, open_derivatives
from bids_taskenc.cli.cluster import ResourceMonitor, clean_work_dir, show_progress
from bids_taskenc.cli.parser import parse_args
from bids_taskenc.errors import EXIT_NO_FILES, NoFilesError, UsageError

from .conftest import files_under, run_app


def _filters(tmp_path, data: dict):
    path = tmp_path / "filter.json"
    path.write_text(json.dumps(data))
    return path


def _runs(bids_dir, path, **kw):
    return select_runs(open_layout(bids_dir), Selection(filters=load_bids_filters(path), filter_file=path, **kw))


def test_bold_filter_selects_runs_null_and_star_as_fmriprep(small_dataset, tmp_path):
    bids = small_dataset.bids_dir
    every = _runs(bids, None)
    assert len(every) == 2
    one = _runs(bids, _filters(tmp_path, {"bold": {"run": 2}}))
    assert [r.run for r in one] == [2]
    # null: the entity is absent (no acquisition entity here, so every run); "*": present with any value (none)
    assert len(_runs(bids, _filters(tmp_path, {"bold": {"acquisition": None}}))) == 2
    with pytest.raises(NoFilesError, match="filter.json: --bids-filter-file's 'bold' query selected no raw BOLD"):
        _runs(bids, _filters(tmp_path, {"bold": {"acquisition": "*"}}))


def test_events_filter_that_selects_nothing_names_the_filter_file(small_dataset, tmp_path):
    path = _filters(tmp_path, {"events": {"acquisition": "nope"}})
    with pytest.raises(NoFilesError, match="filter.json: --bids-filter-file's 'events' query selected no events"):
        _runs(small_dataset.bids_dir, path)


def test_preproc_filter_narrows_the_derivatives(small_dataset, tmp_path):
    bids = small_dataset.bids_dir
    layouts = open_derivatives([bids / "derivatives" / "fmriprep"])
    path = _filters(tmp_path, {"preproc": {"space": "MNI", "desc": "preproc"}})  # ours win: --space, the run
    sel = Selection(filters=load_bids_filters(path), filter_file=path)
    run = _runs(bids, None)[0]
    assert find_preprocessed(layouts, run, "T1w", sel).bold.name.endswith("space-T1w_desc-preproc_bold.nii.gz")
    path = _filters(tmp_path, {"preproc": {"res": "9"}})
    sel = Selection(filters=load_bids_filters(path), filter_file=path)
    with pytest.raises(NoFilesError, match="'preproc' query selected no preprocessed BOLD"):
        find_preprocessed(layouts, run, "T1w", sel)


@pytest.mark.slow
def test_a_preproc_filter_selecting_nothing_exits_18_and_writes_nothing(small_copy, tmp_path, capsys):
    bids = small_copy / "bids"
    out = bids / "derivatives" / "bids_taskenc"
    path = _filters(tmp_path, {"preproc": {"res": "9"}})
    code = run_app(
        bids, out, "participant", "--features-dir", bids / "derivatives" / "features", "-w", small_copy / "work",
        "--bids-filter-file", path, "--no-reports",
    )  # fmt: skip
    assert code == EXIT_NO_FILES
    assert str(path) in capsys.readouterr().err
    assert not list((out / "sub-CSI1").rglob("*.nii.gz")) if out.exists() else True


def test_the_database_dir_is_written_once_and_read_after(small_dataset, tmp_path):
    bids, db = small_dataset.bids_dir, tmp_path / "db"
    first = open_layout(bids, database_dir=db)
    assert (db / "layout_index.sqlite").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".db.tmp")]  # the private copy is gone
    stamp = (db / "layout_index.sqlite").stat().st_mtime_ns
    second = open_layout(bids, database_dir=db)
    assert (db / "layout_index.sqlite").stat().st_mtime_ns == stamp  # read, not written again
    assert sorted(f.path for f in second.get(suffix="bold")) == sorted(f.path for f in first.get(suffix="bold"))
    assert [r.bold for r in select_runs(second, Selection())] == [r.bold for r in select_runs(first, Selection())]


def test_a_database_dir_of_another_dataset_or_with_other_files_is_refused(small_dataset, modern_dataset, tmp_path):
    db = tmp_path / "db"
    open_layout(small_dataset.bids_dir, database_dir=db)
    with pytest.raises(UsageError, match="holds the index of"):
        open_layout(modern_dataset.bids_dir, database_dir=db)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("x")
    with pytest.raises(UsageError, match="holds no pybids index"):
        open_layout(small_dataset.bids_dir, database_dir=other)


def test_clean_workdir_empties_the_work_dir_but_never_the_input_or_output(tmp_path):
    work, bids, out = tmp_path / "work", tmp_path / "bids", tmp_path / "out"
    (work / "features").mkdir(parents=True)
    (work / "features" / "a.npy").write_text("x")
    (work / "cache").mkdir()
    assert clean_work_dir(work, bids, out) == 2
    assert work.is_dir() and not list(work.iterdir())
    with pytest.raises(UsageError, match="refuses"):
        clean_work_dir(tmp_path, bids, out)  # holds the input and output
    bids.mkdir()
    with pytest.raises(UsageError, match="refuses"):
        clean_work_dir(bids, bids, out)


def test_clean_workdir_never_empties_a_folder_that_is_not_a_work_folder(tmp_path):
    """It runs before the dataset's folder checks: an input folder given as -w by mistake (fMRIPrep's, a
    participant's, the user features) was emptied before the run failed (found in review)."""
    bids, out = tmp_path / "bids", tmp_path / "out"
    fmriprep = bids / "derivatives" / "fmriprep"
    (fmriprep / "sub-CSI1" / "func").mkdir(parents=True)
    (fmriprep / "sub-CSI1" / "func" / "bold.nii.gz").write_text("x")
    (fmriprep / "dataset_description.json").write_text("{}")
    features = bids / "derivatives" / "features" / "edge2da"
    features.mkdir(parents=True)
    (features / "features.npy").write_text("x")
    for folder in (fmriprep, fmriprep / "sub-CSI1", features.parent):
        before = sorted(p.relative_to(tmp_path) for p in folder.rglob("*"))
        with pytest.raises(UsageError, match="empties only a bids_taskenc work folder"):
            clean_work_dir(folder, bids, out)
        assert sorted(p.relative_to(tmp_path) for p in folder.rglob("*")) == before


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_bars_on_a_terminal_unless_quiet(tmp_path):
    args = parse_args([str(tmp_path), str(tmp_path / "o"), "participant"])
    assert args.quiet == 0
    assert show_progress(args, _Tty()) is True
    assert show_progress(args, io.StringIO()) is False  # a SLURM log file
    quiet = parse_args([str(tmp_path), str(tmp_path / "o"), "participant", "-q"])
    assert quiet.quiet == 1 and show_progress(quiet, _Tty()) is False


def test_resource_monitor_rows(tmp_path, monkeypatch):
    """One row at the start, one per sample, one at the end; the peak is the largest resident size sampled.
    The resident sizes are given (the allocator decides whether a new block raises the RSS: a test that
    allocated 50 MB failed in the full suite, where freed memory was reused)."""
    import bids_taskenc.cli.cluster as cluster

    sizes = iter([800.0, 850.5, 810.0])
    monkeypatch.setattr(cluster, "_rss_mb", lambda: next(sizes))
    with ResourceMonitor(interval=3600) as monitor:  # the thread waits; the first and last rows are taken
        monitor.sample()
    assert len(monitor.rows) == 3
    path = monitor.write(tmp_path / "logs" / "resources.tsv")
    lines = path.read_text().splitlines()
    assert lines[0].split("\t") == ["time_s", "rss_mb", "cpu_percent", "gpu_mb"]
    values = [line.split("\t") for line in lines[1:]]
    assert [float(v[1]) for v in values] == [800.0, 850.5, 810.0] and all(v[3] == "n/a" for v in values)
    assert monitor.peak_rss_mb == 850.5


@pytest.mark.slow
def test_resource_monitor_file_after_a_run(small_copy, tmp_path):
    bids = small_copy / "bids"
    out = tmp_path / "out"
    code = run_app(
        bids, out, "participant", "--features-dir", bids / "derivatives" / "features", "-w", small_copy / "work",
        "--feature-spaces", "user:random", "--cv-folds", "2", "--no-reports", "--resource-monitor", "-q",
        "--contrast-bootstrap", "0",
    )  # fmt: skip
    assert code == 0
    tsvs = [p for p in files_under(out / "logs") if p.name.startswith("resources-")]
    assert len(tsvs) == 1 and len(tsvs[0].read_text().splitlines()) >= 3


def test_new_options_parse(tmp_path):
    args = parse_args(
        [str(tmp_path), str(tmp_path / "o"), "participant", "--bids-database-dir", str(tmp_path / "db"),
         "--clean-workdir", "--resource-monitor", "-qq"]
    )  # fmt: skip
    assert args.bids_database_dir == tmp_path / "db" and args.clean_workdir and args.resource_monitor
    assert args.quiet == 2


def test_templateflow_home_is_where_the_fsaverage_meshes_are_read(tmp_path, monkeypatch):
    """BABS binds a templateflow folder and sets $TEMPLATEFLOW_HOME; the meshes are read from there."""
    import nibabel as nib

    from bids_taskenc.bids.surfaces import HEMIS, fsaverage5_surfaces

    monkeypatch.setenv("TEMPLATEFLOW_HOME", str(tmp_path / "empty"))
    bundled = fsaverage5_surfaces()
    assert bundled.source == "nilearn's bundled fsaverage5 meshes"
    tpl = tmp_path / "tf" / "tpl-fsaverage"
    tpl.mkdir(parents=True)
    for h in HEMIS:
        for kind, meshes in (("pial", bundled.pial), ("white", bundled.white)):
            target = tpl / f"tpl-fsaverage_hemi-{h}_den-10k_{kind}.surf.gii"
            src = meshes[h]
            if isinstance(src, (str, Path)):
                shutil.copy(src, target)
            else:  # a nilearn mesh object: written as GIFTI
                coords = nib.gifti.GiftiDataArray(src.coordinates.astype("float32"), intent="NIFTI_INTENT_POINTSET")
                faces = nib.gifti.GiftiDataArray(src.faces.astype("int32"), intent="NIFTI_INTENT_TRIANGLE")
                nib.save(nib.gifti.GiftiImage(darrays=[coords, faces]), target)
    monkeypatch.setenv("TEMPLATEFLOW_HOME", str(tmp_path / "tf"))
    found = fsaverage5_surfaces()
    assert found.source == f"templateflow cache {tpl}"
    assert found.pial["L"] == tpl / "tpl-fsaverage_hemi-L_den-10k_pial.surf.gii"


def test_a_job_that_loses_the_race_to_write_the_index_reads_the_winners(small_dataset, tmp_path):
    """Two jobs index at once: the second rename fails on the first's folder, and that index is used."""
    from bids_taskenc.bids.database import _write_index, layout_from_database

    db = tmp_path / "db"
    _write_index(small_dataset.bids_dir.resolve(), db)  # the winner
    stamp = (db / "layout_index.sqlite").stat().st_mtime_ns
    _write_index(small_dataset.bids_dir.resolve(), db)  # the loser: no error, the winner's index stays
    assert (db / "layout_index.sqlite").stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == ["db"]  # no temporary folder left
    assert layout_from_database(small_dataset.bids_dir, db).get(suffix="bold")
