"""Which run log and crash files a page links (report.logs.log_links)."""

from __future__ import annotations

from bids_taskenc.report.logs import log_links


def _log(out, stamp, command):
    path = out / "logs" / f"bids_taskenc-{stamp}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"2026-12-01 09:00:00 INFO bids_taskenc: command: {command}\nmore lines\n")
    return path


def test_each_page_links_the_newest_log_of_its_level_and_participant(tmp_path):
    out = tmp_path / "out"
    _log(out, "20261201-090000", "bids_taskenc bids out participant --tree-bootstrap participant")
    _log(out, "20261201-090100", "bids_taskenc bids out participant --participant-label sub-CSI2 CSI3 -v")
    _log(out, "20261201-090200", "bids_taskenc bids out group --offline")
    _log(out, "20261201-090300", "bids_taskenc bids out participant --reports-only --participant-label CSI1")
    _log(out, "20261201-090400", "bids_taskenc bids out group --tree-bootstrap participant")
    crash = out / "logs" / "crash-20261201-090100-CSI2-0b5e.txt"
    crash.write_text("Traceback")
    (out / "logs" / "crash-20261201-090400-group-77aa.txt").write_text("Traceback")

    assert log_links(out, "group").run_log == "logs/bids_taskenc-20261201-090400.log"
    assert log_links(out, "group").crashes == ["logs/crash-20261201-090400-group-77aa.txt"]
    csi2 = log_links(out, "participant", "CSI2")
    assert csi2.run_log == "logs/bids_taskenc-20261201-090100.log"
    assert csi2.crashes == ["logs/crash-20261201-090100-CSI2-0b5e.txt"]
    # CSI1 was fitted by the run without a selection; the later --reports-only log is only a rebuild
    assert log_links(out, "participant", "CSI1").run_log == "logs/bids_taskenc-20261201-090000.log"
    assert log_links(out, "participant", "CSI1").crashes == []


def test_no_log_no_link(tmp_path):
    links = log_links(tmp_path, "group")
    assert not links and links.run_log is None and links.crashes == []
    _log(tmp_path, "20261201-090000", "bids_taskenc bids out participant")
    assert log_links(tmp_path, "group").run_log is None
