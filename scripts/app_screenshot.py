"""The picture of the web app in the README and the guide: a built-in example, run in the page.

    .venv/bin/python scripts/app_screenshot.py                     # writes docs/img/app.png
    .venv/bin/python scripts/app_screenshot.py --model ckpt.safetensors --example hippocampus

Starts ``neuralizer serve``, opens it in headless Chromium (the one the browser tests use), runs
the example with an ensemble (so the uncertainty map shows) and saves the whole page. The page
names the model it ran: without ``--model``, the shipped one (or, without its weights file, an
untrained network).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from neuralizer.files import write_atomically

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "img" / "app.png"
# The browser driver is a test helper (tests/app/browser.py), not part of the package.
sys.path.insert(0, str(ROOT / "tests" / "app"))
import browser  # noqa: E402


def choose_example(driver, name: str) -> None:
    """Pick ``name`` in the page's task list (typed into its filter, then clicked)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    field = browser.wait_for(
        lambda: driver.find_elements(By.CSS_SELECTOR, "#example-task input"), 30, "the page"
    )[0]
    if field.get_attribute("value").startswith(f"{name}:"):
        return  # already chosen
    field.click()
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(name)
    option = browser.wait_for(
        lambda: [o for o in driver.find_elements(By.CSS_SELECTOR, "li[role=option]")
                 if o.text.startswith(f"{name}:")], 10, f"the option {name}",
    )  # fmt: skip
    option[0].click()


def set_ensemble(driver, size: int) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    field = driver.find_element(By.CSS_SELECTOR, "#ensemble input[type=number]")
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(str(size), Keys.TAB)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="checkpoint to serve (default: as neuralizer serve)")
    parser.add_argument("--example", default="white-matter", help="built-in example to run")
    parser.add_argument("--ensemble", type=int, default=4)
    parser.add_argument("-o", "--output", type=Path, default=OUT)
    args = parser.parse_args()
    from selenium.webdriver.common.by import By

    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "server.log"
        with browser.running_server(args.model, log) as (url, _), \
                browser.headless_chromium(1400, 1000) as driver:  # fmt: skip
            driver.get(url)
            choose_example(driver, args.example)
            set_ensemble(driver, args.ensemble)
            driver.find_element(By.ID, "run-example").click()
            browser.wait_for(lambda: browser.download_links(driver), 1800, "the result", 1.0)
            time.sleep(2)  # let the pictures settle
            # The whole page: a viewport as tall as its content (headless windows do not grow).
            size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": 1400, "height": int(size["height"]) + 16, "deviceScaleFactor": 1,
                "mobile": False,
            })  # fmt: skip
            time.sleep(1)
            write_atomically(args.output, driver.get_screenshot_as_png())
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
