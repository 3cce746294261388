"""Open the reports in headless Chromium: they render, load every figure and log no errors."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="headless Chromium (/usr/bin/chromium) is not installed")

ERRORS = ("Uncaught", "Failed to load resource", "ERR_FILE_NOT_FOUND", "Not allowed to load local resource")


def screenshot(page: Path, png: Path, profile: Path) -> str:
    """Render ``page`` to ``png`` with headless Chromium; return its log (stderr + stdout)."""
    cmd = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
        "--enable-logging=stderr", "--v=0", f"--screenshot={png}", "--window-size=1280,2000", page.as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stderr + proc.stdout


@pytest.mark.parametrize("page", ["sub-CSI1.html", "group.html"])
def test_reports_render_in_chromium(report_run, tmp_path_factory, page):
    out, _ = report_run
    shots = tmp_path_factory.mktemp("screenshots")
    png = shots / (Path(page).stem + ".png")
    log = screenshot(out / page, png, shots / "profile")
    shutil.rmtree(shots / "profile", ignore_errors=True)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    console = [line for line in log.splitlines() if "CONSOLE" in line or any(e in line for e in ERRORS)]
    assert not [line for line in console if any(e in line for e in ERRORS)], "\n".join(console)
