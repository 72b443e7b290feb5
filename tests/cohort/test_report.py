"""The QC report in headless Chromium: it opens from disk, renders every row, and sorts."""

import base64
import io

import numpy as np
import pytest

from neuralizer.infer.report import PANEL_PIXELS, ReportRow, mosaic_pictures, render_report
from neuralizer.infer.statistics import StructureVolume

from ..app import browser
from .conftest import head
from .test_statistics import noisy_cohort, run_noisy_cohort  # noqa: F401 (a fixture)

pytest.importorskip("selenium")
needs_chromium = pytest.mark.skipif(
    browser.chromium_paths() is None, reason="Chromium and chromedriver are not installed"
)


def rows_of(driver) -> list:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, "#results tbody tr")


def column_values(driver, column: int) -> list[str]:
    return [row.find_elements("css selector", "td")[column].text for row in rows_of(driver)]


def picture(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def test_mosaics_of_volumes_and_2d_images():
    image, mask = head()
    affine = np.diag([1.0, 2.0, 3.0, 1.0])  # panels keep the physical aspect
    overlay, spread = mosaic_pictures(image, affine, mask, "segmentation", mask * 0.3)
    rgb = picture(overlay)
    widths = [round(PANEL_PIXELS * w / h) for h, w in ((60, 48), (60, 20), (48, 20))]
    assert rgb.shape == (PANEL_PIXELS, sum(widths) + 2 * 4, 3)
    orange = (rgb[..., 0] > rgb[..., 1] + 40) & (rgb[..., 1] > rgb[..., 2] + 20)
    assert orange[:, : widths[0]].any() and not orange[:5].any()  # the mask, not the border
    assert picture(spread).shape == rgb.shape
    flat, none = mosaic_pictures(image[:, :, 10], None, mask[:, :, 10], "segmentation")
    assert none is None and picture(flat).shape == (PANEL_PIXELS, round(PANEL_PIXELS * 24 / 20), 3)
    result, _ = mosaic_pictures(image, affine, image.astype(np.float32), "image")
    assert picture(result).shape[0] == PANEL_PIXELS  # the scan above its result, one panel high


def test_the_page_is_escaped_and_self_contained():
    volume = StructureVolume("<b>x</b>", "brain", 1, 10, 0.08, None, ("volume_outlier",))
    html = render_report([ReportRow("<b>x</b>", "segmentation", b"\x89PNG", None, (volume,))], "t")
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html
    assert "data:image/png;base64," + base64.b64encode(b"\x89PNG").decode() in html
    assert "http://" not in html and "https://" not in html and "<link" not in html


@needs_chromium
def test_report_opens_renders_every_row_and_sorts(noisy_cohort, identity_model, tmp_path):  # noqa: F811
    from selenium.webdriver.common.by import By

    run_noisy_cohort(noisy_cohort, identity_model, tmp_path)
    with browser.headless_chromium() as driver:
        driver.get((tmp_path / "report.html").as_uri())
        rows = browser.wait_for(lambda: rows_of(driver), 20, "the report's rows")
        assert len(rows) == 7  # five heads, the noise, the blank scan (failed)
        images = driver.find_elements(By.CSS_SELECTOR, "#results img")
        assert len(images) == 2 * 6  # overlay and uncertainty of every finished target
        assert all(driver.execute_script("return arguments[0].naturalWidth", i) > 0 for i in images)
        flagged = {
            r.get_attribute("data-target") for r in rows if "flag" in r.get_attribute("class")
        }
        assert "sub-noise.nii.gz" in flagged and "sub-00.nii.gz" not in flagged
        headers = driver.find_elements(By.CSS_SELECTOR, "#results thead th")
        names = [h.text.split("\n")[0].strip(" ↕") for h in headers]
        volume = next(i for i, n in enumerate(names) if n.startswith("brain"))
        headers[volume].click()
        values = [float(v) for v in column_values(driver, volume) if v]
        assert values == sorted(values) and len(values) == 6
        headers[volume].click()  # again: descending, the noise first
        assert rows_of(driver)[0].get_attribute("data-target") == "sub-noise.nii.gz"
        headers[1].click()  # by name
        targets = [r.get_attribute("data-target") for r in rows_of(driver)]
        assert targets == sorted(targets)
