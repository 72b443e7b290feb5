"""The picture of the cohort QC report in the README and the guide: ``neuralizer predict`` on a
folder of embedded test people (one scan replaced by noise, which the report flags).

    .venv/bin/python scripts/report_screenshot.py                  # writes docs/img/report.png
    .venv/bin/python scripts/report_screenshot.py --people 8 --n-context 4 --keep out/

The scans are T1-like heads of the test people of the embedded data (never trained on, never a
preset example), each with its own small deformation; the preset ``skullstrip`` supplies the
examples; an ensemble of two gives the uncertainty column. Headless Chromium (the one the browser
tests use) opens the report from disk, sorts it by volume (largest first) and saves the first
screen. With ``--keep``, a second run reuses the predictions there (folder mode skips them).
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

from neuralizer.files import write_atomically

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "img" / "report.png"
# The browser driver is a test helper (tests/app/browser.py), not part of the package.
sys.path.insert(0, str(ROOT / "tests" / "app"))
import browser  # noqa: E402


def write_scans(folder: Path, n_people: int) -> None:
    """Heads of ``n_people`` test subjects, and one scan of noise, as NIfTI files."""
    from neuralizer.infer.presets import PRESETS, example_volumes, people_source

    source = people_source("test", n_people)
    make_input = PRESETS["skullstrip"][1]
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(n_people):
        volumes, seed = example_volumes(source, index)
        data = make_input(volumes, seed)
        name = f"person-{source.person(index):02d}-subject-{index:02d}.nii.gz"
        nib.save(nib.Nifti1Image(data, source.grid.affine), folder / name)
    noise = np.random.default_rng(0).uniform(0, 1, data.shape).astype(np.float32)
    nib.save(nib.Nifti1Image(noise, source.grid.affine), folder / "scan-replaced-by-noise.nii.gz")


def small_png(png: bytes) -> bytes:
    """``png`` with a palette of 256 colours: a third of the size, no visible change."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as picture:
        buffer = io.BytesIO()
        picture.convert("RGB").quantize(256).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=5, help="test subjects (default 5)")
    parser.add_argument("--n-context", type=int, default=2, help="preset examples (default 2)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="keep the scans and results in this folder")
    parser.add_argument("-o", "--output", type=Path, default=OUT)
    args = parser.parse_args()
    from neuralizer.cli import main as neuralizer

    work = Path(tempfile.mkdtemp(prefix="neuralizer-report-")) if args.keep is None else args.keep
    try:
        write_scans(work / "scans", args.people)
        start = time.monotonic()
        status = neuralizer([
            "predict", "-i", str(work / "scans"), "-o", str(work / "masks"),
            "--preset", "skullstrip", "--n-context", str(args.n_context), "--ensemble", "2",
            "--uncertainty", str(work / "sd"), "--threads", str(args.threads),
            "--statistics", str(work / "volumes.tsv"), "--report", str(work / "report.html"),
        ])  # fmt: skip
        print(
            f"neuralizer predict took {time.monotonic() - start:.0f} s (status {status}; "
            "results that exist already are skipped)"
        )
        with browser.headless_chromium(1400, 1000) as driver:
            driver.get((work / "report.html").as_uri())
            browser.wait_for(lambda: driver.find_elements("css selector", "#results tbody tr"),
                             20, "the report")  # fmt: skip
            volume = [h for h in driver.find_elements("css selector", "#results thead th")
                      if "(mL)" in h.text][0]  # fmt: skip
            volume.click()
            volume.click()  # largest first: the noise, flagged, at the top
            shot = driver.get_screenshot_as_png()
        write_atomically(args.output, small_png(shot))
        print(f"wrote {args.output}")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
