"""Merging results files written by separate runs (``merge_results``)."""

import json

from neuralizer.evaluate.results import COLUMNS, main, read_rows, write_rows


def _row(target: int, value: str) -> dict:
    row = dict.fromkeys(COLUMNS, "x")
    row.update(experiment="e", method="m", task="t", instance="0", n_context="2",
               target=str(target), metric="dice", value=value)  # fmt: skip
    return row


def test_merge_adds_missing_rows_and_summaries_and_keeps_what_is_there(tmp_path, capsys):
    into, a, b = tmp_path / "e.csv", tmp_path / "a" / "e.csv", tmp_path / "b" / "e.csv"
    for folder in (a.parent, b.parent):
        folder.mkdir()
    write_rows(into, [_row(0, "0.5")])
    write_rows(a, [_row(0, "0.9"), _row(1, "0.6")])
    write_rows(b, [_row(1, "0.1"), _row(2, "0.7")])
    (tmp_path / "e-unet.json").write_text(json.dumps({"x": 1}))
    (a.parent / "e-unet.json").write_text(json.dumps({"x": 2, "y": 3}))
    (b.parent / "e-adapt.json").write_text(json.dumps({"z": 4}))
    assert main([str(a), str(b), "--into", str(into)]) == 0
    assert "2 rows added" in capsys.readouterr().out
    # the first file to hold a key wins: the target's own row, then a's before b's
    assert [(r["target"], r["value"]) for r in read_rows(into)] == [
        ("0", "0.5"), ("1", "0.6"), ("2", "0.7")
    ]  # fmt: skip
    assert json.loads((tmp_path / "e-unet.json").read_text()) == {"x": 1, "y": 3}
    assert json.loads((tmp_path / "e-adapt.json").read_text()) == {"z": 4}
    # merging again adds nothing
    main([str(a), str(b), "--into", str(into)])
    assert "0 rows added" in capsys.readouterr().out and len(read_rows(into)) == 3
