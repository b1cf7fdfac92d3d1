"""The report in a real browser: Debian's headless Chromium, driven by selenium through chromedriver.

Checks what only a browser shows: the leaderboard's rendered numbers against results.json, the
listening grid drawn by the page's script from its sidecar data (paging, filtering, sorting, the
``<script>`` prompt shown as text), keyboard use of the controls, and no console errors (a control
page with a deliberate error proves the detector works on this Chromium first).

Screenshots of the whole page at 1400 px and 800 px wide go to ``BENCH_REPORT_SCREENSHOT``'s folder
as ``<stem>-1400.png`` and ``<stem>-800.png`` (CI sets it to ``artifacts/report.png``), otherwise to
a temporary folder. Skipped with a message where chromium, chromedriver or selenium is missing
(``apt-get install -y chromium chromium-driver``; selenium is in the dev extra).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from bench.report import write_report
from tests.bench.report_fixture import SCRIPT_PROMPT, make_run

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed (dev extra)")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

CHROMIUM = next((p for p in (os.environ.get("CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium")
                 if p and Path(p).is_file()), None)
DRIVER = next((p for p in (os.environ.get("CHROMEDRIVER"), shutil.which("chromedriver"),
                            "/usr/bin/chromedriver") if p and Path(p).is_file()), None)

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None or DRIVER is None,
                                 reason="browser checks of the report skipped: chromium or chromedriver not "
                                 "found (apt-get install -y chromium chromium-driver)")]


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                "--window-size=1400,1000",
                "--disable-background-networking", "--no-first-run", "--disable-component-update"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    yield driver
    driver.quit()


def console(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser")]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    run = make_run(tmp_path_factory.mktemp("browser"))
    return run, write_report(run)


def test_console_detector_catches_errors(browser, tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>undefinedFunction();</script></body></html>")
    browser.get(bad.as_uri())
    assert any("undefinedFunction" in m for m in console(browser))


def test_leaderboard_numbers_in_the_browser_match_results_json(browser, report):
    run, path = report
    browser.get(path.as_uri())
    assert console(browser) == []
    records = json.loads((run / "results.json").read_text())["records"]
    from bench.run_results import protocol_digest

    for r in records:
        sel = (f'tr[data-generator="{_css(r["generator"])}"] .lb-cell[data-metric="{r["metric"]}"]'
               f'[data-protocol="{protocol_digest(r["protocol"])}"]')
        (cell,) = browser.find_elements(By.CSS_SELECTOR, sel)
        assert cell.find_element(By.CSS_SELECTOR, ".val").text == f"{r['value']:.4g}"
        if r["ci_low"] is not None:
            ci = f"[{r['ci_low']:.4g}, {r['ci_high']:.4g}]"
            assert cell.find_element(By.CSS_SELECTOR, ".ci").text == ci
    assert browser.title.startswith("musicgen-bench report")


def _css(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def test_leaderboard_sorts_from_the_keyboard(browser, tmp_path):
    from tests.bench.report_fixture import record

    recs = [record(f"sys{i}", "clap", v, True, {}) for i, v in enumerate((0.2, 0.5, 0.1))]
    recs.append(record("noise", "clap", 0.0, True, {}))
    browser.get(write_report(make_run(tmp_path, records=recs, with_samples=False)).as_uri())
    button = browser.find_element(By.CSS_SELECTOR, "button.sort")
    button.send_keys(Keys.ENTER)  # native button: focusable, Enter activates

    def order():
        rows = browser.find_elements(By.CSS_SELECTOR, "tr.system")
        return [tr.get_attribute("data-generator") for tr in rows]

    assert order() == ["sys1", "sys0", "sys2", "noise"]  # best first (higher is better); controls stay below
    button.send_keys(Keys.ENTER)
    assert order() == ["sys2", "sys0", "sys1", "noise"]


def test_listening_grid_pages_filters_and_keeps_text_as_text(browser, tmp_path):
    run = make_run(tmp_path)
    browser.get(write_report(run).as_uri())
    assert console(browser) == []
    rows = browser.find_elements(By.CSS_SELECTOR, "table.grid tbody tr")
    assert len(rows) == 2
    captions = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "table.grid .caption")]
    assert SCRIPT_PROMPT in captions  # shown as text, never run
    assert browser.title.startswith("musicgen-bench report")
    audios = browser.find_elements(By.CSS_SELECTOR, "table.grid audio")
    assert len(audios) == 5  # 2 references + 3 clips
    for a in audios:
        assert a.get_attribute("preload") == "none"
        src = browser.execute_script("return decodeURI(new URL(arguments[0].src).pathname)", a)
        assert Path(src).is_file(), src
    assert len(browser.find_elements(By.CSS_SELECTOR, "table.grid canvas.thumb")) == 5
    box = browser.find_element(By.CSS_SELECTOR, "input.grid-filter")
    box.send_keys("ambient")
    assert [e.text for e in browser.find_elements(By.CSS_SELECTOR, "table.grid .pid")] == ["p2"]
    box.clear()
    box.send_keys(Keys.BACKSPACE)
    sort = browser.find_element(By.CSS_SELECTOR, "select.grid-sort")
    choose = "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('change'))"
    # musicgen-small's kl, high first: p1 (1.2) before p2 (0.8)
    browser.execute_script(choose, sort, "s:0:1|desc")
    assert [e.text for e in browser.find_elements(By.CSS_SELECTOR, "table.grid .pid")] == ["p1", "p2"]
    browser.execute_script(choose, sort, "s:0:1|asc")
    assert [e.text for e in browser.find_elements(By.CSS_SELECTOR, "table.grid .pid")] == ["p2", "p1"]


def test_grid_pages_through_many_prompts(browser, tmp_path):
    from tests.bench.report_bulk import make_bulk_run

    run = make_bulk_run(tmp_path, n_prompts=45, systems=("a", "b"), audio=False)
    browser.get(write_report(run).as_uri())
    assert len(browser.find_elements(By.CSS_SELECTOR, "table.grid tbody tr")) == 20
    status = browser.find_element(By.CSS_SELECTOR, ".grid-status").text
    assert status == "prompts 1–20 of 45, page 1 of 3"
    browser.find_element(By.CSS_SELECTOR, "button.grid-next").send_keys(Keys.ENTER)
    assert browser.find_element(By.CSS_SELECTOR, ".grid-status").text.startswith("prompts 21–40 of 45")
    assert browser.find_elements(By.CSS_SELECTOR, "table.grid .pid")[0].text == "q00020"


def test_screenshots_at_both_widths(browser, report):
    _, path = report
    base = Path(os.environ.get("BENCH_REPORT_SCREENSHOT") or path.parent / "report.png")
    base.parent.mkdir(parents=True, exist_ok=True)
    for width in (1400, 800):
        browser.set_window_size(width, 1000)
        browser.get(path.as_uri())
        assert console(browser) == []
        height = browser.execute_script("return document.documentElement.scrollHeight")
        overflow = browser.execute_script("return document.documentElement.scrollWidth")
        assert overflow <= width, f"the page is wider than the window at {width} px ({overflow} px)"
        browser.set_window_size(width, min(height + 40, 8000))
        shot = base.with_name(f"{base.stem}-{width}{base.suffix or '.png'}")
        assert browser.save_screenshot(str(shot))
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    browser.set_window_size(1400, 1000)
