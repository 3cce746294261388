"""The report options of the command line: --reports-only, --boilerplate-only, --no-reports,
--pycortex-subject, and what a failing report does to the exit code."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import bids_taskenc.report as report_pkg
from bids_taskenc.cli.parser import parse_args
from bids_taskenc.cli.run import main, pycortex_subjects
from bids_taskenc.errors import UsageError
from bids_taskenc.outputs.logs import run_logs

PAGES = ("sub-CSI1.html", "sub-CSI2.html", "group.html")


def _copy(report_run: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The BIDS folder of the shared run and a private copy of its outputs, reports removed."""
    bids = report_run.parents[1]
    out = tmp_path / "out"
    shutil.copytree(report_run, out)
    for page in PAGES:
        (out / page).unlink()
    shutil.rmtree(out / "figures")
    shutil.rmtree(out / "logs")
    return bids, out


def _snapshot(out: Path) -> dict:
    return {
        p: p.stat().st_mtime_ns
        for p in out.rglob("*")
        if p.is_file() and "func" in p.parts or p.is_file() and "group" in p.parts
    }


@pytest.mark.slow
def test_reports_only_rebuilds_from_the_outputs_without_fitting(report_run, tmp_path, capsys):
    bids, out = _copy(report_run, tmp_path)
    before = _snapshot(out)
    work = tmp_path / "work"
    assert main([str(bids), str(out), "participant", "--reports-only", "-w", str(work)]) == 0
    assert (out / "sub-CSI1.html").exists() and (out / "sub-CSI2.html").exists()
    assert not (out / "group.html").exists()
    assert all((out / "logs" / f"CITATION.{ext}").exists() for ext in ("md", "html", "bib"))
    assert main([str(bids), str(out), "group", "--reports-only"]) == 0
    assert (out / "group.html").exists()
    assert _snapshot(out) == before, "--reports-only changed an analysis output"
    assert not work.exists(), "--reports-only touched the work directory"
    assert "files written, 0 failed" in capsys.readouterr().err


@pytest.mark.slow
def test_reports_only_for_one_participant(report_run, tmp_path):
    bids, out = _copy(report_run, tmp_path)
    assert main([str(bids), str(out), "participant", "--reports-only", "--participant-label", "sub-CSI2"]) == 0
    assert (out / "sub-CSI2.html").exists() and not (out / "sub-CSI1.html").exists()
    assert main([str(bids), str(out), "participant", "--reports-only", "--participant-label", "CSI7"]) == 66


@pytest.mark.slow
def test_boilerplate_only_writes_just_the_citation_files(report_run, tmp_path):
    bids, out = _copy(report_run, tmp_path)
    assert main([str(bids), str(out), "group", "--boilerplate-only"]) == 0
    assert sorted(p.name for p in (out / "logs").iterdir() if p not in run_logs(out)) == [
        "CITATION.bib",
        "CITATION.html",
        "CITATION.md",
    ]
    assert not (out / "figures").exists() and not any((out / page).exists() for page in PAGES)
    assert "Task structure" in (out / "logs" / "CITATION.md").read_text()


@pytest.mark.slow
def test_reports_only_without_outputs_is_a_missing_input(report_run, tmp_path):
    bids = report_run.parents[1]
    assert main([str(bids), str(tmp_path / "empty"), "participant", "--reports-only"]) == 66
    assert main([str(bids), str(tmp_path / "empty"), "group", "--boilerplate-only"]) == 66


@pytest.mark.slow
def test_a_failing_report_is_loud_and_exits_1(report_run, tmp_path, monkeypatch, capsys):
    bids, out = _copy(report_run, tmp_path)

    def boom(*args, **kwargs):
        raise RuntimeError("figure backend exploded")

    monkeypatch.setattr(report_pkg, "write_participant_report", boom)
    assert main([str(bids), str(out), "participant", "--reports-only"]) == 1
    err = capsys.readouterr().err
    assert "report sub-CSI1 failed: RuntimeError: figure backend exploded" in err  # the ERROR log line
    assert "report sub-CSI1: FAILED: RuntimeError: figure backend exploded" in err  # the summary
    assert "the analysis outputs are complete; rebuild with --reports-only" in err
    assert (out / "logs" / "CITATION.md").exists(), "the other report files are still written"


@pytest.mark.slow
def test_participant_level_writes_its_report_unless_told_not_to(small_dataset, tmp_path, monkeypatch, capsys):
    ds = small_dataset
    out, work = tmp_path / "out", tmp_path / "work"
    args = [str(ds.bids_dir), str(out), "participant", "--features-dir", str(ds.features_dir), "-w", str(work)]
    assert main(args + ["--no-reports"]) == 0
    assert (out / "sub-CSI1" / "func").is_dir()
    assert not (out / "sub-CSI1.html").exists() and not list((out / "logs").glob("CITATION.*"))

    # a report failure after a successful fit: outputs intact, exit 1, said on stderr
    def no_figure(*args, **kwargs):
        raise ValueError("no figure for you")

    monkeypatch.setattr(report_pkg, "write_participant_report", no_figure)
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "1 succeeded, 0 failed" in err and "report sub-CSI1: FAILED: ValueError: no figure for you" in err
    assert (out / "sub-CSI1" / "func").is_dir() and (out / "logs" / "CITATION.md").exists()
    monkeypatch.undo()
    assert main(args) == 0
    assert (out / "sub-CSI1.html").exists()


def test_pycortex_subject_option():
    base = ["bids", "out", "participant"]
    assert parse_args(base + ["--pycortex-subject", "S1"]).pycortex_subject == ["S1"]
    assert pycortex_subjects(["S1"]) == "S1"
    assert pycortex_subjects(["sub-CSI1=S1", "CSI2=S2"]) == {"CSI1": "S1", "CSI2": "S2"}
    assert pycortex_subjects(None) is None
    for bad in (["S1", "S2"], ["CSI1=S1", "S2"], ["=S1"], ["CSI1="]):
        with pytest.raises(UsageError):
            parse_args(base + ["--pycortex-subject", *bad])
    with pytest.raises(UsageError):
        parse_args(base + ["--reports-only", "--boilerplate-only"])
    with pytest.raises(UsageError):
        parse_args(base + ["--reports-only", "--no-reports"])
