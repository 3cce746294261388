"""Open the reports in headless Chromium: every image loads, the console stays silent, screenshots are saved.

A copy of each page with a small script added (in a temporary folder that
links the output's ``figures/``) reports, after the page's load event, every
``<img>`` that did not decode (``complete && naturalWidth > 0``); Chromium's
``--dump-dom`` prints it. The real page (no script) is then screenshotted at
its full height. Set ``BIDS_TASKENC_SCREENSHOTS=DIR`` to keep the screenshots.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
#: Window width of every load (a laptop screen); the page height depends on it.
WIDTH = 1280

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="headless Chromium (/usr/bin/chromium) is not installed")

CHECK = """<script>
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const bad = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src'));
  const out = document.createElement('pre'); out.id = 'imgcheck';
  out.textContent = JSON.stringify({n: imgs.length, bad: bad, height: document.documentElement.scrollHeight});
  document.body.appendChild(out);
  if (bad.length) console.error('broken images: ' + bad.join(' '));
});
</script>"""


def chromium(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        *extra,
        url,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def console_lines(log: str) -> list[str]:
    """Messages the page wrote to the console, and resource-load failures."""
    return [
        line
        for line in log.splitlines()
        if ":CONSOLE" in line
        or "Failed to load resource" in line
        or "ERR_FILE_NOT_FOUND" in line
        or "Not allowed to load local resource" in line
    ]


def image_check(page: Path, work: Path, figures: Path) -> tuple[dict, list[str]]:
    """Load a scripted copy of ``page`` next to ``figures``; return the check's result and console lines."""
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "figures").exists():
        (work / "figures").symlink_to(figures, target_is_directory=True)
    html = page.read_text()
    (work / page.name).write_text(html.replace("</body>", CHECK + "\n</body>"))
    proc = chromium(
        (work / page.name).as_uri(),
        work / "profile",
        f"--window-size={WIDTH},1000",
        "--virtual-time-budget=10000",
        "--dump-dom",
    )
    match = re.search(r'<pre id="imgcheck">(.*?)</pre>', proc.stdout)
    assert match, "the check script did not run:\n" + proc.stdout[-1000:]
    return json.loads(match.group(1)), console_lines(proc.stderr)


@pytest.mark.slow
@pytest.mark.parametrize("page", ["sub-CSI1.html", "group.html"])
def test_reports_render_in_chromium(report_run, tmp_path, page):
    out = report_run
    result, console = image_check(out / page, tmp_path / "check", out / "figures")
    n_img = len(re.findall(r"<img\b", (out / page).read_text()))
    assert result["n"] == n_img >= 4
    assert result["bad"] == [], f"images that did not load: {result['bad']}"
    assert console == [], "\n".join(console)
    # the real page, unchanged, at its full height
    png = tmp_path / (Path(page).stem + ".png")
    height = min(int(result["height"]) + 20, 16000)
    proc = chromium(
        (out / page).as_uri(), tmp_path / "profile", f"--window-size={WIDTH},{height}", f"--screenshot={png}"
    )
    assert console_lines(proc.stderr) == []
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 50_000
    keep = os.environ.get("BIDS_TASKENC_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(png, Path(keep) / png.name)


@pytest.mark.slow
def test_the_image_check_catches_a_missing_figure(report_run, tmp_path):
    """The check is not vacuous: with one figure gone it names that figure and logs a console error."""
    out = report_run
    figures = tmp_path / "figures_copy"
    shutil.copytree(out / "figures", figures)
    victim = sorted(figures.glob("task-*_desc-similarity_figure.png"))[0]
    victim.unlink()
    result, console = image_check(out / "group.html", tmp_path / "check", figures)
    assert result["bad"] == [f"figures/{victim.name}"]
    assert any("broken images" in line for line in console)
