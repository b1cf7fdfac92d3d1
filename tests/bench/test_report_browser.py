"""The report in a real browser: Debian's headless Chromium loads it from disk with no console errors,
its audio elements point to existing files, and a ``<script>`` prompt is shown as text (never run).

Skipped with a message when no Chromium is installed (``apt-get install -y chromium``). Set
``BENCH_REPORT_SCREENSHOT=path.png`` to keep the screenshot (a CI artifact); otherwise it goes to a
temporary folder. Console messages are read from Chromium's own log (``--enable-logging=stderr``),
where each one is a line containing ``:CONSOLE``; a control page with a deliberate error proves the
detector works on this Chromium before the report is judged by it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from bench.report import write_report
from tests.bench.html_tree import parse
from tests.bench.report_fixture import SCRIPT_PROMPT, make_run

CHROMIUM = next((p for p in (os.environ.get("CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium",
                             shutil.which("chromium-browser")) if p and Path(p).is_file()), None)

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="headless report check skipped: no chromium "
                                 "found (install Debian's with `apt-get install -y chromium`)")]


def _chromium(page: Path, profile: Path, *extra: str) -> tuple[str, list[str]]:
    """Run headless Chromium on a local file; return (stdout, console lines of its log)."""
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--no-first-run", "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
           "--enable-logging=stderr", "--v=0", *extra, page.resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    return proc.stdout, console


def test_console_detector_catches_errors(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>undefinedFunction();</script></body></html>")
    _, console = _chromium(bad, tmp_path / "profile", "--dump-dom")
    assert any("Uncaught ReferenceError" in line for line in console), console


def test_report_in_headless_chromium(tmp_path):
    run = make_run(tmp_path)
    report = write_report(run)
    dom_text, console = _chromium(report, tmp_path / "profile", "--dump-dom")
    assert console == [], "console messages while loading the report:\n" + "\n".join(console)
    dom = parse(dom_text)
    # the page's own sorting script is the only script; the prompt's never became an element
    assert len(dom.find_all("script")) == 1 and dom.find_all("img") == []
    assert dom.find_all("title")[0].text().startswith("musicgen-bench report")
    assert SCRIPT_PROMPT in [td.text() for td in dom.find_all("td", "prompt")]
    audios = dom.find_all("audio")
    assert len(audios) == 6
    for audio in audios:
        assert (report.parent / audio.attrs["src"]).is_file(), audio.attrs["src"]
    shot = Path(os.environ.get("BENCH_REPORT_SCREENSHOT") or tmp_path / "report.png")
    shot.parent.mkdir(parents=True, exist_ok=True)
    _, console = _chromium(report, tmp_path / "profile", f"--screenshot={shot.resolve()}",
                           "--window-size=1280,4600", "--hide-scrollbars")
    assert console == []
    assert shot.is_file() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sample_table_sorts_in_the_browser(tmp_path):
    """Clicks the ``kl`` header twice with an appended probe script and reads the row order back."""
    report = write_report(make_run(tmp_path))
    probe = """<script>
    var table = document.querySelector("table.samples");
    var heads = Array.prototype.slice.call(table.querySelectorAll("thead th"));
    var col = heads.findIndex(function (h) { return h.textContent.trim() === "kl"; });
    function order() {
      return Array.prototype.map.call(table.tBodies[0].rows, function (r) {
        return r.cells[col].getAttribute("data-sort"); }).join(",");
    }
    heads[col].click(); document.body.setAttribute("data-asc", order());
    heads[col].click(); document.body.setAttribute("data-desc", order());
    </script></body>"""
    probed = report.with_name("probed.html")
    probed.write_text(report.read_text().replace("</body>", probe))
    dom_text, console = _chromium(probed, tmp_path / "profile", "--dump-dom")
    assert console == []
    body = parse(dom_text).find_all("body")[0]
    assert body.attrs["data-asc"] == "0.8,1.2,9.5"
    assert body.attrs["data-desc"] == "9.5,1.2,0.8"
