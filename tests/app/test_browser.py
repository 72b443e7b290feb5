"""The web app in a real browser: ``neuralizer serve`` driven by headless Chromium (Selenium).

One server and one browser for the module: a built-in example end to end (its download equals
``neuralizer predict``'s file), a bad upload (a readable message in the page), and the stop (the
temporary folder is removed).
"""

import os
import signal
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from neuralizer.app.core import write_example
from neuralizer.cli import main

from . import browser

pytest.importorskip("gradio")
pytest.importorskip("selenium")

SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture(scope="module")
def app(tiny_checkpoint, tmp_path_factory):
    """(url, driver, server process, the server's TMPDIR) for a server on the tiny model."""
    if browser.chromium_paths() is None:
        message = "Chromium is not installed; bash scripts/setup.sh installs it"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    tmp = tmp_path_factory.mktemp("server")
    (tmp / "tmp").mkdir()
    # The server imports this checkout's code, wherever the package was installed from.
    path = os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p)
    env = {"TMPDIR": str(tmp / "tmp"), "PYTHONPATH": path}
    with browser.running_server(tiny_checkpoint, tmp / "server.log", env=env) as (url, process):
        with browser.headless_chromium() as driver:
            yield url, driver, process, tmp / "tmp"


def test_a_builtin_example_runs_end_to_end_and_downloads_what_predict_writes(
    app, tiny_checkpoint, tmp_path
):
    from selenium.webdriver.common.by import By

    url, driver, _, _ = app
    links = browser.run_example(driver, url)  # the default example: white matter
    # The image element appears with its address before the browser has decoded it: wait (a
    # loaded machine takes seconds), then check it really shows a picture.
    picture = browser.wait_for(
        lambda: [
            img
            for img in driver.find_elements(By.CSS_SELECTOR, "#prediction-image img")
            if img.get_attribute("src") and img.get_attribute("naturalWidth") not in (None, "0")
        ],
        60,
        "the result image to load",
    )[0]
    assert int(picture.get_attribute("naturalWidth")) > 0
    assert "tiny.safetensors" in driver.find_element(By.ID, "model-info").text
    assert len(driver.find_elements(By.CSS_SELECTOR, "#context-gallery img")) >= 3
    requested = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert requested and all(name.startswith(url) for name in requested)  # nothing off this host

    downloaded = tmp_path / "download.nii.gz"
    downloaded.write_bytes(browser.fetch(next(a for a in links if "prediction" in a)))
    files = write_example("white-matter", tmp_path / "examples")
    expected = tmp_path / "predict.nii.gz"
    argv = ["predict", "-i", str(files.target), "-o", str(expected), "--seed", "0",
            "--model", str(tiny_checkpoint), "--context-in", *map(str, files.context_in),
            "--context-out", *map(str, files.context_out)]  # fmt: skip
    assert main(argv) == 0
    got, want, target = (nib.load(p) for p in (downloaded, expected, files.target))
    assert got.shape == target.shape and np.array_equal(got.affine, target.affine)
    assert np.allclose(got.get_fdata(), want.get_fdata(), atol=1e-5, rtol=0)
    assert got.get_data_dtype() == want.get_data_dtype()


def test_a_bad_upload_shows_a_readable_message(app, tmp_path):
    from selenium.webdriver.common.by import By

    url, driver, _, _ = app
    bad = tmp_path / "scan.nii.gz"
    bad.write_bytes(b"not a scan")
    driver.get(url)
    tab = browser.wait_for(
        lambda: [b for b in driver.find_elements(By.CSS_SELECTOR, "button[role=tab]")
                 if b.text == "Your files"], 30, "the tabs")  # fmt: skip
    tab[0].click()
    upload = browser.wait_for(
        lambda: driver.find_elements(By.CSS_SELECTOR, "#target-file input[type=file]"), 10,
        "the upload field",
    )  # fmt: skip
    upload[0].send_keys(str(bad))
    # the page shows the name as "scan.nii" and ".gz" on two lines
    browser.wait_for(lambda: "scan.nii" in driver.find_element(By.ID, "target-file").text,
                     30, "the upload")  # fmt: skip
    driver.find_element(By.ID, "run-files").click()

    def page_with_error() -> str | None:
        text = driver.find_element(By.TAG_NAME, "body").text
        return text if "is not a readable NIfTI file" in text else None

    page = browser.wait_for(page_with_error, 30, "the error message")
    assert "scan.nii.gz is not a readable NIfTI file" in page
    assert "Traceback" not in page and "neuralizer-serve-" not in page
    assert driver.find_element(By.ID, "status").text.startswith("Not run")


def test_stopping_the_server_removes_its_temporary_folder(app):
    _, _, process, tmp = app
    assert list(tmp.glob("neuralizer-serve-*"))  # uploads and results were there
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert list(tmp.glob("neuralizer-serve-*")) == []
