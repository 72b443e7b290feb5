"""The QC report in headless Chromium: it opens from disk, renders every row, and sorts."""

import base64

import pytest

from neuralizer.infer.report import ReportRow, render_report
from neuralizer.infer.statistics import StructureVolume

from ..app import browser
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
