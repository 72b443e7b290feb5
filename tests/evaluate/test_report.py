from pathlib import Path

from neuralizer.evaluate.report import make_page

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
    for csv in csvs:  # every linked figure is committed
        for kind in ("scores", "examples"):
            assert (ROOT / "docs" / "img" / f"{Path(csv).stem}-{kind}.png").is_file()
