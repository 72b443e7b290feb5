"""Drive the web app in a real browser: a ``neuralizer serve`` process and headless Chromium.

A test helper (not shipped in the package), for the app's browser tests and
``scripts/app_screenshot.py``. Chromium and its WebDriver come from the
system packages (Debian: ``chromium``, ``chromium-driver``); nothing is downloaded at run time.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # Chromium refuses to run as root with its sandbox
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
)


def chromium_paths() -> tuple[str, str] | None:
    """(browser, driver) executables, or None if they are not installed."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_server(
    model: str | Path | None, log: Path, *, env: dict[str, str] | None = None, timeout: float = 90
) -> Iterator[tuple[str, subprocess.Popen]]:
    """Start ``neuralizer serve`` on a free local port; yield (its URL, the process).

    Its output goes to ``log``. On leaving, the server gets SIGTERM (as from a service manager)
    and is given time to remove its temporary folder.
    """
    port = free_port()
    command = [sys.executable, "-m", "neuralizer", "serve", "--port", str(port)]
    command += ["--model", str(model)] if model is not None else []
    with open(log, "wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT,
                                   env={**os.environ, **(env or {})})  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_until_served(url, process, log, timeout)
        yield url, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_served(url: str, process: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server stopped (status {process.returncode}):\n"
                               f"{log.read_text(errors='replace')[-3000:]}")  # fmt: skip
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"the server did not answer at {url} within {timeout:.0f} s")


@contextmanager
def headless_chromium(width: int = 1400, height: int = 1000):
    """A Selenium WebDriver for headless Chromium with a fresh profile (removed afterwards)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    paths = chromium_paths()
    if paths is None:
        raise RuntimeError("Chromium is not installed: apt-get install chromium chromium-driver")
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not download drivers
    profile = tempfile.mkdtemp(prefix="neuralizer-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=paths[1]))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(condition, timeout: float, what: str, interval: float = 0.25):
    """Poll ``condition()`` until it returns something true; TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"waited {timeout:.0f} s for {what}")


def download_links(driver) -> list[str]:
    """The addresses of the files offered for download in the page."""
    from selenium.webdriver.common.by import By

    links = driver.find_elements(By.CSS_SELECTOR, "#downloads a[href]")
    return [link.get_attribute("href") for link in links]


def run_example(driver, url: str, timeout: float = 180) -> list[str]:
    """Open the page, run the selected built-in example, return the download addresses."""
    from selenium.webdriver.common.by import By

    driver.get(url)
    button = wait_for(lambda: driver.find_elements(By.ID, "run-example"), 30, "the page")[0]
    button.click()
    return wait_for(lambda: download_links(driver), timeout, "the result")


def fetch(address: str) -> bytes:
    with urllib.request.urlopen(address, timeout=30) as response:
        return response.read()
