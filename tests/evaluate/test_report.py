from pathlib import Path

import pytest

from neuralizer.evaluate.report import (
    headline_table,
    held_out_table,
    make_page,
    plot_relative,
    relative_rows,
    target_table,
)

ROOT = Path(__file__).resolve().parents[2]


def test_committed_results_page_matches_the_committed_csvs(monkeypatch):
    monkeypatch.chdir(ROOT)
    csvs = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs" / "results").glob("*.csv"))
    assert csvs, "no committed results CSV"
    page = (ROOT / "docs" / "results.md").read_text()
    generated = make_page(csvs)
    assert page == generated, (
        "docs/results.md is stale: run python -m neuralizer.evaluate.report docs/results/*.csv "
        "-o docs/results.md --figures docs/img"
    )
    for line in page.splitlines():  # every linked figure is committed
        if line.startswith("!["):
            assert (ROOT / "docs" / line.split("](")[1].rstrip(")")).is_file(), line


def _row(method: str, n: int, instance: int, value: float) -> dict:
    return {"experiment": "x", "method": method, "task": "denoising", "instance": str(instance),
            "n_context": str(n), "value": str(value), "metric": "psnr"}  # fmt: skip


def test_relative_scores_divide_by_the_all_data_unet_of_the_same_instance(tmp_path):
    rows = [_row("unet", 512, 0, 20.0), _row("unet", 512, 1, 40.0), _row("unet", 8, 0, 10.0)]
    rows += [_row("neuralizer", 8, 0, 30.0), _row("neuralizer", 8, 1, 20.0)]
    rel, n_all = relative_rows(rows)
    assert n_all == 512
    got = {(r["method"], r["n_context"], r["instance"]): r["value"] for r in rel}
    assert got[("neuralizer", "8", "0")] == pytest.approx(1.5)
    assert got[("neuralizer", "8", "1")] == pytest.approx(0.5)
    assert got[("unet", "8", "0")] == pytest.approx(0.5)
    assert plot_relative(rows, tmp_path / "rel.png") and (tmp_path / "rel.png").stat().st_size > 0
    no_unet = [r for r in rows if r["method"] != "unet"]
    assert relative_rows(no_unet) == ([], 0) and not plot_relative(no_unet, tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()


def test_the_report_reads_a_csv_being_appended_to_without_touching_it(tmp_path):
    from neuralizer.evaluate.results import COLUMNS, write_rows

    def row(target: int) -> dict:
        return {**{c: "x" for c in COLUMNS}, "experiment": "live", "method": "mean",
                "task": "denoising", "n_context": "1", "target": str(target), "metric": "psnr",
                "value": "20.0", "label": "", "seconds": "1"}  # fmt: skip

    path = tmp_path / "live.csv"
    write_rows(path, [row(0), row(1)])
    with open(path, "a") as f:
        f.write("live,mean,denoi")  # another process is in the middle of appending a row
    before = path.read_bytes()
    page = make_page([str(path)], figures=False, page_dir=tmp_path)
    assert path.read_bytes() == before
    assert "20.000 ± 0.000 (2)" in page


def test_target_table_gives_each_methods_mean_per_target_with_its_seconds():
    """The scripted experiments' time per target (issue 32 asks for it beside the scores)."""

    def row(method, target, instance, value, seconds):
        return {**_row(method, 8, instance, value), "target": target, "seconds": seconds}

    rows = [row("affine", "10", 0, 0.8, "100"), row("affine", "10", 1, 0.6, "100")]
    rows += [row("deformable", "10", 0, 0.9, "1800"), row("affine", "5", 0, 0.5, "390")]
    lines = target_table(rows)
    assert lines[0] == "| target | affine | deformable |"
    assert lines[2:] == ["| 5 | 0.500 (390 s) | – |", "| 10 | 0.700 (100 s) | 0.900 (1800 s) |"]


def test_headline_compares_methods_at_the_largest_shared_n_and_counts_wins():
    rows = [_row("unet", 512, 0, 40.0), _row("unet", 8, 0, 30.0), _row("unet", 16, 0, 35.0)]
    rows += [_row("neuralizer", 8, 0, 31.0), _row("neuralizer", 8, 1, 33.0)]
    rows += [_row("mean", 8, 0, 12.0), _row("neuralizer", 4, 0, 5.0)]
    seg = {"task": "segmentation", "metric": "dice"}
    rows += [{**_row("mean", 8, 0, 0.9), **seg}, {**_row("neuralizer", 8, 0, 0.7), **seg}]
    lines = headline_table(rows)
    assert lines[0].startswith("Headline: mean score per task at n = 8")
    assert "(the U-Net on all 512 pairs is shown, not compared)" in lines[0]
    assert "| denoising | psnr | 12.000 | **32.000** | 30.000 | 40.000 |" in lines
    assert "| segmentation | dice | **0.900** | 0.700 | – | – |" in lines
    assert lines[-2] == "Best at n = 8: mean on 1 (segmentation); neuralizer on 1 (denoising)."
    assert headline_table([r for r in rows if r["method"] == "mean"]) == []


def test_headline_lists_a_task_only_the_all_data_unet_ran_without_a_winner():
    rows = [_row("unet", 512, 0, 40.0), _row("unet", 8, 0, 30.0), _row("neuralizer", 8, 0, 31.0)]
    rows += [{**_row("unet", 512, 0, 0.8), "task": "inpainting"}]
    lines = headline_table(rows)
    assert "| inpainting | psnr | – | – | 0.800 |" in lines
    assert lines[-2] == "Best at n = 8: neuralizer on 1 (denoising)."


def test_held_out_scores_are_fractions_of_the_seen_model_per_task_and_n():
    rows = [_row("m-seen", 1, 0, 20.0), _row("m-seen", 1, 1, 40.0), _row("m-unseen", 1, 0, 27.0)]
    rows += [_row("m-seen", 4, 0, 30.0), _row("m-unseen", 4, 0, 33.0), _row("mean", 4, 0, 9.0)]
    seg = {"task": "segmentation", "metric": "dice"}
    rows += [{**_row("m-seen", 1, 0, 0.8), **seg}, {**_row("m-unseen", 1, 0, 0.6), **seg}]
    lines = held_out_table(rows)
    assert "| m-unseen / m-seen | n=1 | n=4 |" in lines
    assert "| denoising | 0.900 | 1.100 |" in lines  # 27 / mean(20, 40); 33 / 30
    assert "| segmentation | 0.750 | – |" in lines
    assert "| mean over tasks | 0.825 | 1.100 |" in lines
    assert held_out_table([r for r in rows if r["method"] != "m-seen"]) == []


def test_adaptation_times_stand_beside_the_unet_training_times(tmp_path):
    import json

    from neuralizer.evaluate.report import adapt_table

    csv_path = tmp_path / "exp.csv"
    (tmp_path / "exp-adapt.json").write_text(json.dumps({
        "m-adapt50 denoising-0-n8": {"steps": 50, "batch": 2, "lr": 1e-4, "parameters": "all",
                                     "n_pairs": 8, "seconds": 61.4, "threads": 1},
        "m-adapt50 denoising-1-n8": {"steps": 50, "batch": 2, "lr": 1e-4, "parameters": "all",
                                     "n_pairs": 8, "seconds": 70.0, "threads": 1},
    }))  # fmt: skip
    (tmp_path / "exp-unet.json").write_text(
        json.dumps({"denoising-0-n8": {"seconds": 412.2, "budget": {"threads": 2}}})
    )
    lines = adapt_table([str(csv_path)], "exp")
    row0 = next(line for line in lines if "denoising-0-n8" in line)
    row1 = next(line for line in lines if "denoising-1-n8" in line)
    assert "| 61 |" in row0 and "412 (2 threads)" in row0
    assert "| 70 |" in row1 and row1.rstrip().endswith("| – |")
    assert adapt_table([str(csv_path)], "other") == []
