import csv

import nibabel as nib
import numpy as np
import pytest

from neuralizer.cli import main
from neuralizer.demo import TASKS


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "-o", str(out), "--seed", "1", "--n-context", "2"]) == 0
    return out


def test_demo_writes_figure_and_metrics(demo):
    png = (demo / "demo.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    rows = list(csv.DictReader((demo / "metrics.csv").open()))
    assert [r["task"] for r in rows] == [t.name for t in TASKS]
    by_task = {r["task"]: r for r in rows}
    # The examples are registered to the scan before use: averaging two registered brain masks is
    # then a fair guess (unregistered, subjects lie up to 10° and 6 mm apart), though not a
    # perfect one: these are three different real people (baseline Dice 0.870 and 0.695).
    assert float(by_task["skull stripping"]["baseline"]) > 0.85
    assert float(by_task["thalamus"]["baseline"]) > 0.6
    assert 18 < float(by_task["denoising"]["baseline"]) < 30  # the noisy input itself
    # The shipped model (trained on MNI-based subjects only) on these two examples (seed 1: Dice
    # 0.729, 0.883, 0.927; PSNR 20.3 and 25.0 dB against 14.4 and 24.2 for the input unchanged),
    # with a margin for float rounding.
    model = {t: float(by_task[t]["neuralizer"]) for t in by_task}
    assert model["thalamus"] > 0.7 and model["white matter"] > 0.85
    assert model["skull stripping"] > 0.9
    for task, gain in (("thalamus", 0.0), ("white matter", 0.2), ("skull stripping", 0.03)):
        assert model[task] > float(by_task[task]["baseline"]) + gain
    assert model["T1 to T2"] > float(by_task["T1 to T2"]["baseline"]) + 4.0  # dB
    assert model["denoising"] > float(by_task["denoising"]["baseline"])


def test_demo_writes_nifti_on_the_scans_grid(demo):
    for task in TASKS:
        folder = demo / task.name.replace(" ", "_")
        scan, prediction, truth = (nib.load(folder / f"{n}.nii.gz")
                                   for n in ("input", "prediction", "truth"))  # fmt: skip
        assert prediction.shape == truth.shape == scan.shape
        assert np.array_equal(prediction.affine, scan.affine)
        values = np.asarray(prediction.dataobj)
        if task.segmentation:
            assert prediction.get_data_dtype() == np.uint8 and set(np.unique(values)) <= {0, 1}
        else:
            assert prediction.get_data_dtype() == np.float32 and np.isfinite(values).all()


def test_demo_refuses_a_bad_example_count_before_any_work(tmp_path, capsys):
    assert main(["demo", "-o", str(tmp_path / "d"), "--n-context", "0"]) == 2
    assert "1 to 12 examples" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()
