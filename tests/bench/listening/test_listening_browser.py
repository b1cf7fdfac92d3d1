"""The listening test in a real browser: headless Chromium driven by selenium rates every item, reloads
(ratings kept), exports (a download), and the export is imported and shown by the report.

Skipped with a message where Debian's ``chromium`` + ``chromium-driver`` or selenium are missing
(``apt-get install -y chromium chromium-driver``; selenium is in the dev extra).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from bench.listening.page import build_test
from bench.listening.ratings import import_files
from bench.report import write_report
from tests.bench.html_tree import parse
from tests.bench.listening.listening_fixture import SYSTEM_PREFIX, make_listening_run

CHROMIUM = next(
    (
        p
        for p in (os.environ.get("CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium")
        if p and Path(p).is_file()
    ),
    None,
)
DRIVER = next(
    (
        p
        for p in (os.environ.get("CHROMEDRIVER"), shutil.which("chromedriver"), "/usr/bin/chromedriver")
        if p and Path(p).is_file()
    ),
    None,
)
try:
    import selenium  # noqa: F401
except ImportError:  # pragma: no cover - depends on the machine
    selenium = None

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None or DRIVER is None or selenium is None,
        reason="listening-test browser check skipped: needs chromium, chromedriver (apt-get install -y "
        "chromium chromium-driver) and selenium (pip install selenium)",
    ),
]


def _driver(profile: Path, downloads: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(arg)
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(DRIVER), options=options)


def _score(key, stimulus: str, scale: str) -> int:
    """What the test rates: a value that depends on the system and item, so the report's means are known."""
    stimuli = key.stimuli()
    item, stim = stimuli[stimulus]
    k = key.systems.index(stim.system)
    return (15 + 30 * k + int(item.id[1:])) if scale == "ovl" else (90 - 25 * k - int(item.id[1:]))


RATE = """
var s = arguments[0]; s.value = arguments[1];
s.dispatchEvent(new Event('input', {bubbles: true}));
"""


def _rate(driver, key, limit: int | None = None) -> int:
    from selenium.webdriver.common.by import By

    boxes = driver.find_elements(By.CSS_SELECTOR, "#stimuli .stimulus[data-stimulus]")
    done = 0
    for box in boxes:
        for slider in box.find_elements(By.CSS_SELECTOR, "input[type=range]"):
            if limit is not None and done >= limit:
                return done
            value = _score(key, box.get_attribute("data-stimulus"), slider.get_attribute("data-scale"))
            driver.execute_script(RATE, slider, value)
            done += 1
    return done


def test_rate_reload_export_import_report(tmp_path):
    from selenium.webdriver.common.by import By

    run = make_listening_run(tmp_path, n_systems=3, n_prompts=3)
    key, page = build_test(run, tmp_path / "page", n_items=3, raters_seed=5)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver = _driver(tmp_path / "profile", downloads)
    try:
        driver.get(page.resolve().as_uri())
        driver.find_element(By.ID, "rater-id").send_keys("alice")
        driver.find_element(By.ID, "start-button").click()
        assert "Text: prompt" in driver.find_element(By.ID, "prompt").text
        assert driver.find_element(By.ID, "next-button").get_attribute("disabled")  # nothing rated yet
        _rate(driver, key)
        driver.find_element(By.ID, "next-button").click()
        second = [
            b.get_attribute("data-stimulus") for b in driver.find_elements(By.CSS_SELECTOR, ".stimulus")
        ]
        assert _rate(driver, key, limit=3) == 3
        driver.refresh()  # ratings and position are kept across the reload
        assert driver.find_element(By.ID, "position").text == "2"
        assert driver.find_element(By.ID, "done-count").text == "1"
        assert [
            b.get_attribute("data-stimulus") for b in driver.find_elements(By.CSS_SELECTOR, ".stimulus")
        ] == second
        values = [v.text for v in driver.find_elements(By.CSS_SELECTOR, "#stimuli .value")]
        assert values[3:] == ["–"] * 3 and all(v.isdigit() for v in values[:3])
        for _ in range(2):
            _rate(driver, key)
            driver.find_element(By.ID, "next-button").click()
        assert driver.find_element(By.ID, "finished").is_displayed()
        driver.find_element(By.ID, "export-final-button").click()
        target = downloads / f"ratings-{key.test_id}-alice.json"
        deadline = time.monotonic() + 10
        while not target.is_file() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert target.is_file(), list(downloads.iterdir())
        # another rater sees another order of the same items
        driver.find_element(By.ID, "review-button").click()
        driver.find_element(By.ID, "switch-button").click()
        driver.find_element(By.ID, "rater-id").send_keys("bob")
        driver.find_element(By.ID, "start-button").click()
        states = [
            json.loads(
                driver.execute_script(f"return localStorage.getItem('bench-listen/{key.test_id}/{r}')")
            )
            for r in ("alice", "bob")
        ]
        assert (states[0]["order"], states[0]["stimOrder"]) != (states[1]["order"], states[1]["stimOrder"])
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == [], errors
    finally:
        driver.quit()
    text = target.read_text()
    assert SYSTEM_PREFIX not in text and "audio/" not in text
    export = json.loads(text)
    assert len(export["ratings"]) == sum(len(it.stimuli) for it in key.items) == 9
    assert import_files(run, [target]) == {key.test_id: ["alice"]}
    report = parse(write_report(run).read_text())
    (scores,) = report.find_all("table", "listening-scores")
    for tr in scores.find_all("tbody")[0].find_all("tr"):
        system = tr.find_all("td", "system")[0].text().strip()
        for td in tr.find_all("td", "score"):
            scale = td.attrs["data-scale"]
            expected = [
                _score(key, s.id, scale) for it in key.items for s in it.stimuli if s.system == system
            ]
            assert float(td.attrs["data-value"]) == pytest.approx(sum(expected) / len(expected)), (
                system,
                scale,
            )
