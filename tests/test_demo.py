import csv

from neuralizer.cli import main


def test_demo_writes_figure_and_metrics(tmp_path):
    assert main(["demo", "-o", str(tmp_path), "--seed", "1"]) == 0
    png = (tmp_path / "demo.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [r["task"] for r in rows] == ["white matter", "grey matter", "brain mask", "denoising"]
    by_task = {r["task"]: r for r in rows}
    # Nearby coronal slices of one brain: averaging their masks is a strong guess, which checks
    # that targets and context are slices of the same, aligned anatomy.
    assert float(by_task["brain mask"]["context mean"]) > 0.9
    assert 10 < float(by_task["denoising"]["context mean"]) < 40
    for r in rows:
        assert r["neuralizer"] not in ("", "nan")
