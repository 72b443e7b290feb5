import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

import neuralizer
from neuralizer.cli import main
from neuralizer.tasks.episode import Batch
from neuralizer.train import TrainConfig, train
from neuralizer.train.loop import micro_batch, train_step
from neuralizer.train.plot import read_log, wall_time

TINY = {
    "data": "phantom",
    "channels": 8,
    "stages": 3,
    "phantom_size": 32,
    "n_train_subjects": 6,
    "n_val_subjects": 3,
    "batch_size": 4,
    "micro_batch_size": 2,
    "max_context": 3,
    "steps_per_epoch": 10,
    "val_batches": 2,
    "checkpoint_every": 3,
    "threads": 1,
}


def _config(tmp_path: Path, name: str, **changes) -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({**TINY, "run_dir": str(tmp_path / name), **changes}))
    return path


def _parameters(run: Path) -> dict[str, torch.Tensor]:
    return neuralizer.load(run / "latest.safetensors").state_dict()


def test_interrupted_and_resumed_run_ends_with_the_same_parameters(tmp_path):
    steps = 40
    train(TrainConfig.from_file(_config(tmp_path, "straight", max_steps=steps)))

    config = _config(tmp_path, "interrupted", max_steps=steps)
    command = [sys.executable, "-m", "neuralizer", "train", str(config)]
    process = subprocess.Popen(command, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    log = tmp_path / "interrupted" / "log.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (log.is_file() and len(read_log(log)) >= 5):
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0  # SIGTERM: checkpoint, then a clean exit
    interrupted_at = json.loads(
        __import__("safetensors")
        .safe_open(tmp_path / "interrupted" / "state.safetensors", "pt")
        .metadata()["progress"]
    )["step"]
    assert 0 < interrupted_at < steps

    with pytest.raises(FileExistsError):
        train(TrainConfig.from_file(config))  # refuses to overwrite without --resume
    assert main(["train", str(config), "--resume"]) == 0
    straight, resumed = _parameters(tmp_path / "straight"), _parameters(tmp_path / "interrupted")
    for key, value in straight.items():
        assert torch.equal(value, resumed[key]), key
    steps_logged = [r["step"] for r in read_log(log) if "loss" in r]
    assert steps_logged == list(range(1, steps + 1))  # no step lost or repeated in the log


def test_resume_refuses_another_config(tmp_path):
    train(TrainConfig.from_file(_config(tmp_path, "run", max_steps=3)))
    changed = TrainConfig.from_file(_config(tmp_path, "run", max_steps=3, seed=1))
    with pytest.raises(ValueError, match=r"different config \(sampler.seed: 0 -> 1\)"):
        train(changed, resume=True)


def test_resume_accepts_new_micro_batching_and_threads(tmp_path):
    train(TrainConfig.from_file(_config(tmp_path, "run", max_steps=3)))
    faster = _config(tmp_path, "run", max_steps=5, micro_batch_size=4, micro_batch_members=4)
    assert train(TrainConfig.from_file(faster), resume=True).step == 5
    more_threads = _config(tmp_path, "run", max_steps=6, micro_batch_size=4, threads=2)
    assert train(TrainConfig.from_file(more_threads), resume=True).step == 6
    workers = _config(tmp_path, "run", max_steps=7, micro_batch_size=4, threads=2, num_workers=1)
    assert train(TrainConfig.from_file(workers), resume=True).step == 7


def test_a_new_training_mix_on_resume_keeps_the_validation_set(tmp_path):
    from neuralizer.train.data import build_samplers

    train(TrainConfig.from_file(_config(tmp_path, "run", max_steps=3)))
    only = {"denoising": 1.0}
    config = TrainConfig.from_file(_config(tmp_path, "run", max_steps=5, train_task_weights=only))
    assert train(config, resume=True).step == 5
    plain_stream, plain_val = build_samplers(TrainConfig.from_file(_config(tmp_path, "run")))
    stream, val = build_samplers(config)
    assert {t for i in range(4) for t in stream.batch(i).tasks} == {"denoising"}
    assert len({t for i in range(4) for t in plain_stream.batch(i).tasks}) > 1
    for a, b in zip(plain_val, val, strict=True):
        assert a.tasks == b.tasks and torch.equal(a.target_out, b.target_out)


def test_a_new_step_size_on_resume_scales_the_next_adam_update(tmp_path):
    train(TrainConfig.from_file(_config(tmp_path, "a", max_steps=1)))
    first = _state(tmp_path / "a")
    train(TrainConfig.from_file(_config(tmp_path, "a", max_steps=2)), resume=True)
    train(TrainConfig.from_file(_config(tmp_path, "b", max_steps=1)))
    train(TrainConfig.from_file(_config(tmp_path, "b", max_steps=2, lr=1e-3)), resume=True)
    plain, faster = _state(tmp_path / "a"), _state(tmp_path / "b")
    moved = 0
    for key, start in first.items():
        if key.startswith("model/"):  # same weights, data and moments: the update scales with lr
            step = plain[key] - start
            torch.testing.assert_close(faster[key] - start, 10 * step, rtol=1e-3, atol=1e-7)
            moved += bool(step.abs().max() > 0)
    assert moved
    with safe_open(tmp_path / "b" / "state.safetensors", "pt") as file:
        groups = json.loads(file.metadata()["param_groups"])
    assert [group["lr"] for group in groups] == [1e-3]
    # The log records what each resume changed (config.json keeps the first config).
    resumes = [r for r in read_log(tmp_path / "b" / "log.jsonl") if r.get("event") == "resume"]
    first_lr = json.loads((tmp_path / "b" / "config.json").read_text())["lr"]
    assert first_lr != 1e-3
    assert resumes == [
        {"step": 1, "event": "resume", "changed": {"max_steps": [1, 2], "lr": [first_lr, 1e-3]}}
    ]


def _state(run: Path) -> dict[str, torch.Tensor]:
    with safe_open(run / "state.safetensors", "pt") as file:
        return {key: file.get_tensor(key) for key in file.keys()}


def test_weight_average_follows_its_formula_and_resumes_exactly(tmp_path):
    decay, module = 0.75, "ema/module."
    train(TrainConfig.from_file(_config(tmp_path, "a", max_steps=1, ema_decay=decay)))
    first = _state(tmp_path / "a")
    w1 = {k.removeprefix("model/"): v for k, v in first.items() if k.startswith("model/")}
    for key, value in w1.items():  # the first update copies the weights
        assert torch.equal(first[module + key], value), key
    train(TrainConfig.from_file(_config(tmp_path, "a", max_steps=2, ema_decay=decay)), resume=True)
    resumed, latest = _state(tmp_path / "a"), _parameters(tmp_path / "a")
    assert resumed["ema/n_averaged"].item() == 2
    moved = 0
    for key, value in w1.items():
        w2 = resumed["model/" + key]
        expected = decay * value + (1 - decay) * w2
        torch.testing.assert_close(resumed[module + key], expected, rtol=1e-6, atol=1e-7)
        assert torch.equal(latest[key], resumed[module + key]), key  # "latest" is the average
        moved += not torch.equal(w2, value)
    assert moved  # the optimiser did change the raw weights

    train(TrainConfig.from_file(_config(tmp_path, "b", max_steps=2, ema_decay=decay)))
    straight = _state(tmp_path / "b")
    for key, value in straight.items():  # model, optimiser, average and RNG state
        assert torch.equal(value, resumed[key]), key

    # Switched on at a resume: the average starts from that step; the raw weights are unchanged.
    train(TrainConfig.from_file(_config(tmp_path, "c", max_steps=1)))
    assert not any(k.startswith("ema/") for k in _state(tmp_path / "c"))
    train(TrainConfig.from_file(_config(tmp_path, "c", max_steps=2, ema_decay=decay)), resume=True)
    switched = _state(tmp_path / "c")
    assert switched["ema/n_averaged"].item() == 1
    for key in w1:
        assert torch.equal(switched["model/" + key], straight["model/" + key]), key
        assert torch.equal(switched[module + key], switched["model/" + key]), key
    with pytest.raises(ValueError, match="ema_decay"):
        TrainConfig(ema_decay=1.0)


def _random_batch(b: int, n: int, size: int) -> Batch:
    """B episodes of L = n random pairs, half of them segmentation-like."""
    return Batch(
        target_in=torch.rand(b, 3, size, size),
        target_out=(torch.rand(b, 1, size, size) > 0.5).float(),
        context_in=torch.rand(b, n, 3, size, size),
        context_out=torch.rand(b, n, 1, size, size),
        tasks=("x",) * b,
        segmentation_like=torch.arange(b) % 2 == 0,
        records=(),
    )


def test_micro_batches_bounded_by_context_members_give_the_same_gradient():
    torch.manual_seed(0)
    model = neuralizer.Neuralizer(neuralizer.ModelConfig(channels=8, stages=3))
    b, n, size = 6, 4, 32
    batch = _random_batch(b, n, size)
    gradients, losses = {}, {}
    for members in (0, 9, 4, 1):  # micro-batches of 6; 2 (2, 2, 2); 1 (x6); 1
        values = {"batch_size": b, "micro_batch_size": b, "micro_batch_members": members}
        config = TrainConfig.from_dict(values)
        assert micro_batch(config, n) == {0: 6, 9: 2, 4: 1, 1: 1}[members]
        optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # keeps the parameters
        losses[members] = train_step(model, optimizer, batch, config, torch.device("cpu"))
        gradients[members] = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    for members in (9, 4, 1):
        assert losses[members] == pytest.approx(losses[0], rel=1e-5)
        for whole, parts in zip(gradients[0], gradients[members], strict=True):
            torch.testing.assert_close(parts, whole, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="micro_batch_members"):
        TrainConfig(micro_batch_members=-1)


def test_validation_best_checkpoint_and_plot(tmp_path, capsys):
    progress = train(TrainConfig.from_file(_config(tmp_path, "run", max_steps=20, lr=1e-3)))
    run = tmp_path / "run"
    validations = [r for r in read_log(run / "log.jsonl") if r.get("event") == "validation"]
    assert [r["step"] for r in validations] == [10, 20]
    best = min(validations, key=lambda r: r["val_loss"])
    assert progress.best_step == best["step"]
    assert neuralizer.load(run / "best.safetensors").provenance["best_step"] == best["step"]
    assert main(["plot-log", str(run / "log.jsonl"), "-o", str(tmp_path / "curves.png")]) == 0
    assert (tmp_path / "curves.png").read_bytes().startswith(b"\x89PNG")
    steps = [r for r in read_log(run / "log.jsonl") if "loss" in r]
    assert 0 < steps[0]["seconds"] < steps[-1]["seconds"]  # time since the start, per step
    assert "steps 1–20" in capsys.readouterr().out.splitlines()[-1]


def test_wall_time_adds_the_segments_of_a_log_old_and_new():
    old_segment = [  # before steps carried "seconds": 4 steps of 8 episodes at 0.5 episodes/s
        {"step": 1, "loss": 1.0, "episodes_per_s": 1.0},
        {"step": 2, "loss": 1.0, "episodes_per_s": 0.5},
        {"step": 2, "event": "validation", "val_loss": 1.0},
        {"step": 4, "loss": 1.0, "episodes_per_s": 0.5},
        {"step": 4, "event": "end"},
    ]
    new_segment = [
        {"step": 4, "event": "resume", "changed": {}},
        {"step": 5, "loss": 1.0, "seconds": 30.0, "episodes_per_s": 9.9},
        {"step": 6, "loss": "torn", "seconds": "x"},
        {"step": 6, "loss": 1.0, "seconds": 3600.0},
    ]
    assert wall_time(old_segment, 8) == (pytest.approx(64 / 3600), 1)
    assert wall_time(new_segment) == (1.0, 1)
    # a resume without an end event before it (the run was killed) still starts a segment
    assert wall_time(old_segment[:-1] + new_segment, 8) == (pytest.approx(1 + 64 / 3600), 2)
    assert wall_time(old_segment) == (0.0, 0)  # an old log without the batch size: unknown


def test_early_stopping_with_patience(tmp_path):
    # lr so small that validation cannot improve after the first epoch: stops after 2 more.
    config = _config(tmp_path, "run", max_steps=100, lr=1e-12, steps_per_epoch=2, patience=2)
    progress = train(TrainConfig.from_file(config))
    assert progress.step == 6 and progress.bad_epochs == 2


@pytest.mark.parametrize("bad", [{"lr": 0}, {"unknown_field": 1}, {"batch_size": 5}])
def test_bad_configs_are_rejected(tmp_path, bad):
    assert main(["train", str(_config(tmp_path, "bad", **bad))]) == 2


def test_torchrun_two_processes_stay_in_sync_and_learn(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    config = _config(tmp_path, "ddp", max_steps=20, fixed_batch=True, lr=3e-3, steps_per_epoch=100)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [str(torchrun), "--standalone", "--nproc-per-node", "2", "-m", "neuralizer"]
    result = subprocess.run(
        [*command, "train", str(config)], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    records = read_log(tmp_path / "ddp" / "log.jsonl")
    losses = [r["loss"] for r in records if "loss" in r]
    assert len(losses) == 20
    assert losses[-1] < 0.8 * losses[0]
    assert records[-1]["event"] == "end" and records[-1]["rank_spread"] == 0.0


def test_split_algebra_gives_the_plain_forward_and_gradient():
    torch.manual_seed(0)
    model = neuralizer.Neuralizer(neuralizer.ModelConfig(channels=8, stages=3))
    b = 3
    batch = _random_batch(b, 5, 32)
    inputs = batch.target_in, batch.context_in, batch.context_out
    plain, split = (model(*inputs, fast=False, split=s) for s in (False, True))
    torch.testing.assert_close(split, plain, rtol=1e-5, atol=1e-6)
    assert not torch.equal(split, plain)  # a different computation, not the same code path
    gradients, losses = {}, {}
    for form in (False, True):
        config = TrainConfig.from_dict({"batch_size": b, "micro_batch_size": b,
                                        "split_algebra": form})  # fmt: skip
        optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # keeps the parameters
        losses[form] = train_step(model, optimizer, batch, config, torch.device("cpu"))
        # (The last block's context update reaches no output: no gradient in either form.)
        gradients[form] = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    assert losses[True] == pytest.approx(losses[False], rel=1e-5)
    assert len(gradients[True]) == len(gradients[False]) > 40
    for plain_grad, split_grad in zip(gradients[False], gradients[True], strict=True):
        torch.testing.assert_close(split_grad, plain_grad, rtol=1e-4, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_cpu_run_resumes_on_cuda_in_bf16_and_back_on_the_cpu(tmp_path):
    cpu = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    for steps, env, extra in ((2, cpu, []), (4, os.environ, ["--resume"]), (6, cpu, ["--resume"])):
        config = _config(tmp_path, "run", max_steps=steps)
        command = [sys.executable, "-m", "neuralizer", "train", str(config), *extra]
        subprocess.run(command, env=env, check=True, timeout=600)
    state = _state(tmp_path / "run")
    assert all(torch.isfinite(v).all() for k, v in state.items() if v.is_floating_point())
    steps = [r["step"] for r in read_log(tmp_path / "run" / "log.jsonl") if "loss" in r]
    assert steps == list(range(1, 7))  # two steps on each device, none lost or repeated
