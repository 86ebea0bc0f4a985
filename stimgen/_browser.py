"""Headless Chromium for looking at ``report.html`` the way a reader's browser shows it.

Used by the report's browser test and by the docs figure of a report. It drives the
system's Chromium (Debian: ``apt-get install chromium chromium-driver``) through selenium
and its ``chromedriver``; it never downloads a browser or a driver.

find_chromium   ``(chromium, chromedriver)`` paths, or None when either is missing
open_page       a selenium driver showing a local HTML file at a given viewport size
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> tuple[str, str] | None:
    """Paths of a Chromium binary and a matching ``chromedriver``, or None if either is missing."""
    browser = next((p for p in (shutil.which(b) for b in BROWSERS) if p), None)
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        return None
    return browser, driver


def open_page(path: str | os.PathLike, *, width_px: int = 1280, height_px: int = 900) -> Any:
    """A headless Chromium (selenium driver) showing the local file ``path``.

    The viewport is exactly ``width_px`` x ``height_px`` CSS pixels at device scale 1, the
    browser console is logged (``driver.get_log("browser")``), and the page is loaded when
    this returns. The caller quits the driver.

    Raises
    ------
    RuntimeError
        No Chromium or no chromedriver on the PATH.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    found = find_chromium()
    if found is None:
        raise RuntimeError("no chromium and chromedriver on the PATH (Debian: apt-get install chromium chromium-driver)")
    browser, driver_path = found
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--hide-scrollbars", f"--window-size={width_px},{height_px}", "--force-device-scale-factor=1"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=Service(driver_path))
    try:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": width_px, "height": height_px, "deviceScaleFactor": 1, "mobile": False})
        driver.get(Path(path).resolve().as_uri())
        driver.execute_async_script(  # every image decoded (or failed) before anyone looks
            "const done = arguments[arguments.length - 1];"
            "Promise.all(Array.from(document.images).map(i => i.decode().catch(() => null))).then(() => done(true));")
    except BaseException:
        driver.quit()
        raise
    return driver
