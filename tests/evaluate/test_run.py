"""The smoke configuration end to end: every method, rows, resumability, CLI."""

import csv
import dataclasses
import json
import time
from pathlib import Path

import pytest

from neuralizer.cli import main
from neuralizer.evaluate import EvalConfig, run
from neuralizer.evaluate.report import make_page
from neuralizer.evaluate.results import read_rows, row_key, write_rows
from neuralizer.evaluate.run import unet_summaries_path
from neuralizer.evaluate.smoke import make_tiny_model

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "configs" / "eval" / "smoke.json"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("smoke")
    config = EvalConfig.from_file(SMOKE)
    config = dataclasses.replace(
        config,
        output=str(tmp / "smoke.csv"),
        models={"tiny": str(make_tiny_model(tmp / "tiny.safetensors"))},
        unet=dataclasses.replace(config.unet, run_dir=str(tmp / "unet")),
    )
    # CPU seconds of this process (every thread), not wall time: other work on the machine
    # (a training run) must not fail the test, and "a minute on 2 cores" is 120 CPU seconds.
    start = time.process_time()
    computed = run(config)
    return config, computed, time.process_time() - start


def test_smoke_run_makes_every_row_once_in_under_a_minute_on_two_cores(smoke):
    config, computed, cpu_seconds = smoke
    assert cpu_seconds < 120
    methods = {"tiny", "tiny-ens2", "mean", "atlas", "unet"}
    n_sizes = len(config.context_sizes)  # the U-Net sizes are as many here
    expected = len(config.tasks) * len(methods) * n_sizes * config.n_targets
    rows = read_rows(config.output)
    assert len(rows) == len(computed) == expected == len({row_key(r) for r in rows})
    assert {r["method"] for r in rows} == methods
    for r in rows:
        value = float(r["value"])
        if r["metric"] == "dice":
            assert 0.0 <= value <= 1.0
        assert r["metric"] == (
            "dice" if r["task"] in ("segmentation", "skull_stripping") else "psnr"
        )
    mean_rows = [r for r in rows if r["method"] == "mean" and r["task"] == "skull_stripping"]
    assert min(float(r["value"]) for r in mean_rows) > 0.5  # phantom brains overlap


def test_every_trained_unet_leaves_its_summary_beside_the_results(smoke):
    config, _, _ = smoke
    summaries = json.loads(unet_summaries_path(config).read_text())
    expected = {f"{t}-0-n{n}" for t in config.tasks for n in config.unet.train_sizes}
    assert set(summaries) == expected
    for name, summary in summaries.items():
        assert summary["step"] == summary["budget"]["steps"] == config.unet.steps
        assert summary["n_train"] == int(name.rsplit("-n", 1)[1]) and summary["seconds"] > 0
    page = make_page([config.output], figures=False)  # the results page lists their budgets
    for name, summary in summaries.items():
        steps = f"{summary['step']} × {config.unet.batch_size}"
        assert f"| {name} | {summary['n_train']} | {steps} |" in page


def test_rerun_redoes_exactly_the_deleted_rows(smoke):
    config, _, _ = smoke
    rows = read_rows(config.output)
    assert run(config) == []  # finished: nothing to do
    deleted = [rows[1], rows[len(rows) // 2], rows[-1]]
    write_rows(config.output, [r for r in rows if r not in deleted])
    redone = run(config)
    assert sorted(redone) == sorted(row_key(r) for r in deleted)
    again = {row_key(r): r["value"] for r in read_rows(config.output)}
    for r in deleted:  # deterministic: the same values as the first time
        assert again[row_key(r)] == r["value"]


def test_torn_last_line_is_dropped_and_redone(smoke):
    config, _, _ = smoke
    text = open(config.output).read()
    last = text.rstrip("\n").rsplit("\n", 1)[1]
    with open(config.output, "w") as f:
        f.write(text.rstrip("\n")[: -len(last) // 2])  # crash in the middle of the last line
    redone = run(config, methods=["mean", "atlas", "unet"])
    assert len(redone) == 1
    assert len(list(csv.DictReader(open(config.output)))) == len(
        {row_key(r) for r in read_rows(config.output)}
    )


def test_cli_evaluate_runs_a_subset(smoke, tmp_path, capsys):
    config, _, _ = smoke
    path = tmp_path / "c.json"
    cfg = dataclasses.replace(config, output=str(tmp_path / "out.csv"))
    path.write_text(json.dumps(cfg.to_dict()))
    assert main(["evaluate", str(path), "--methods", "mean", "--tasks", "denoising"]) == 0
    rows = read_rows(cfg.output)
    assert {(r["method"], r["task"]) for r in rows} == {("mean", "denoising")}
    assert main(["evaluate", str(path), "--methods", "nonsense"]) == 2


def test_config_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="pool_size"):
        EvalConfig(
            name="x",
            output="x.csv",
            tasks=("denoising",),
            methods=("mean",),
            pool_size=4,
            context_sizes=(1, 8),
        )
    with pytest.raises(ValueError, match="models"):
        EvalConfig(name="x", output="x.csv", tasks=("denoising",))


def test_committed_configs_parse():
    for path in (
        "smoke",
        "smoke-synth",
        "exp1-baselines",
        "exp1-unseen",
        "exp2-context",
        "exp3-protocol",
        "shipped-acceptance",
    ):
        config = EvalConfig.from_file(ROOT / "configs" / "eval" / f"{path}.json")
        assert config.name == path and config.output == f"docs/results/{path}.csv"


def test_cli_examples_grid(smoke, tmp_path):
    config, _, _ = smoke
    path = tmp_path / "c.json"
    cfg = dataclasses.replace(config, output=str(tmp_path / "out.csv"), tasks=("denoising",))
    path.write_text(json.dumps(cfg.to_dict()))
    argv = ["evaluate", str(path), "--methods", "mean", "--examples", str(tmp_path)]
    assert main(argv) == 0
    assert (tmp_path / "smoke-examples.png").stat().st_size > 1000


def test_second_run_on_the_same_file_is_refused_and_duplicates_are_dropped(smoke):
    from neuralizer.evaluate.results import exclusive

    config, _, _ = smoke
    with exclusive(config.output), pytest.raises(ValueError, match="another evaluation"):
        run(config)
    rows = read_rows(config.output)
    text = Path(config.output).read_text()
    lines = text.splitlines(keepends=True)
    Path(config.output).write_text(text + "".join(lines[1:4]))  # two runs appended the same rows
    assert read_rows(config.output) == rows


def test_rows_that_share_a_key_are_refused_before_writing(smoke, tmp_path):
    """Reread, all but the first of them would be lost: several structures of one target once
    went in as one instance."""
    from neuralizer.evaluate.results import append_rows

    config, _, _ = smoke
    rows = read_rows(config.output)
    other = {**rows[0], "label": "another structure", "value": "0.5"}
    for write in (write_rows, append_rows):
        with pytest.raises(ValueError, match="share the key"):
            write(tmp_path / "out.csv", [rows[0], other])
        assert not (tmp_path / "out.csv").exists()


def test_adapted_rows_fall_back_at_one_pair_and_record_their_time(tmp_path):
    import torch

    from neuralizer.evaluate.run import adapt_summaries_path
    from neuralizer.model import ModelConfig, Neuralizer, save_checkpoint

    torch.manual_seed(0)  # a c=8 network whose raw outputs are not all clamped away
    save_checkpoint(tmp_path / "tiny.safetensors", Neuralizer(ModelConfig(channels=8)))
    config = dataclasses.replace(
        EvalConfig.from_file(SMOKE),
        output=str(tmp_path / "adapt.csv"),
        tasks=("segmentation", "denoising"),
        methods=("neuralizer", "neuralizer-adapt2"),
        models={"tiny": str(tmp_path / "tiny.safetensors")},
        ensemble=0,
    )
    run(config)
    rows = read_rows(config.output)
    value = {(r["method"], r["task"], r["n_context"], r["target"]): r["value"] for r in rows}
    assert {r["method"] for r in rows} == {"tiny", "tiny-adapt2"}
    for task in config.tasks:
        for t in ("0", "1"):
            assert value[("tiny-adapt2", task, "1", t)] == value[("tiny", task, "1", t)]
    assert any(value[("tiny-adapt2", task, "2", t)] != value[("tiny", task, "2", t)]
               for task in config.tasks for t in ("0", "1"))  # fmt: skip
    summaries = json.loads(adapt_summaries_path(config).read_text())
    assert set(summaries) == {f"tiny-adapt2 {task}-0-n2" for task in config.tasks}
    assert all(s["steps"] == 2 and s["n_pairs"] == 2 and s["seconds"] > 0
               for s in summaries.values())  # fmt: skip


def test_adapt_methods_and_target_split_are_checked():
    base = EvalConfig.from_file(SMOKE)
    for bad in ("neuralizer-adapt0", "neuralizer-adaptx", "adapt5"):
        with pytest.raises(ValueError, match="unknown methods"):
            dataclasses.replace(base, methods=(bad,))
    assert dataclasses.replace(base, methods=("neuralizer-adapt50",)).methods
    with pytest.raises(ValueError, match="target_split"):
        dataclasses.replace(base, target_split="train")
