"""One real run of the app (synthetic data, participant + group level) shared by the report tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from bids_taskenc.cli.run import main as app_main
from bids_taskenc.report import build_reports
from bids_taskenc.testing.cli import main as synthetic_main

REFERENCE = (Path(__file__).parents[2] / ".." / "shared" / "reference" / "taskonomy" / "all_affinities.pkl").resolve()


@pytest.fixture(scope="session")
def report_run(tmp_path_factory):
    """Run synthetic data -> participant -> group -> build_reports once; return (output_dir, written)."""
    base = tmp_path_factory.mktemp("report_run")
    bids = base / "bids"
    assert synthetic_main([str(bids), "--participants", "2", "--sessions", "2", "--runs-per-session", "3"]) == 0
    out = bids / "derivatives" / "bids_taskenc"
    common = [str(bids), str(out)]
    assert app_main(common + ["participant", "--features-dir", str(bids / "derivatives" / "features"),
                              "--work-dir", str(base / "work")]) == 0
    group = common + ["group", "--offline", "--n-bootstrap", "50"]
    if REFERENCE.exists():
        group += ["--reference-affinities", str(REFERENCE)]
    assert app_main(group) == 0
    written = build_reports(out)
    return out, written
