"""Debian's headless Chromium through its chromedriver, for the console's tests and screenshots."""

from __future__ import annotations

import shutil
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

__all__ = ["CHROMEDRIVER", "chromium"]

# Debian's chromium-driver (`make system-deps`): Selenium's own driver manager would
# download a browser, which this project's machines cannot.
CHROMEDRIVER = "/usr/bin/chromedriver"


def chromium(profile: Path, width: int = 1280, height: int = 900) -> webdriver.Chrome:
    """A headless Chromium with its own profile directory and a fixed window size."""
    if not Path(CHROMEDRIVER).exists() or shutil.which("chromium") is None:
        msg = "no chromium/chromedriver: run `make system-deps` (apt-get install chromium chromium-driver)"
        raise RuntimeError(msg)
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for argument in (
        "--headless=new",
        # Root (CI runs as root) needs it; the pages are this project's own.
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-extensions",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
