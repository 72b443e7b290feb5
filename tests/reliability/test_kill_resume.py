"""Fault injection: SIGKILL a tiny training run at random moments, many times in a row, resuming
each time. After every kill, every checkpoint on disk loads and the saved step never goes back;
the final parameters equal those of an uninterrupted run, and the log holds every step once.

Training runs in processes forked from a ``forkserver`` that imported torch and neuralizer once,
so a cycle costs its training time, not 3 s of imports; each is killed with SIGKILL (``kill``).
NEURALIZER_RELIABILITY=long runs 100 cycles instead of 20.
"""

import json
import multiprocessing
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

import neuralizer
from neuralizer.cli import main
from neuralizer.model import ModelConfig, Neuralizer
from neuralizer.train import TrainConfig, train
from neuralizer.train.plot import read_log
from neuralizer.train.state import load_state

CYCLES = 100 if os.environ.get("NEURALIZER_RELIABILITY") == "long" else 20
TINY = {
    "data": "phantom",
    "channels": 4,
    "stages": 2,
    "phantom_size": 16,
    "n_train_subjects": 4,
    "n_val_subjects": 2,
    "batch_size": 2,
    "micro_batch_size": 1,
    "max_context": 2,
    "steps_per_epoch": 7,  # validation and best.safetensors in the mix
    "val_batches": 1,
    "checkpoint_every": 1,
    "threads": 1,
    "max_steps": 6 * CYCLES,
}


@pytest.fixture(scope="module")
def forkserver():
    context = multiprocessing.get_context("forkserver")
    # torch._dynamo: imported lazily by the first optimiser, ~2.5 s.
    preload = ["neuralizer.cli", "neuralizer.train", "neuralizer.tasks", "torch._dynamo"]
    context.set_forkserver_preload(preload)
    return context


def _saved_step(run: Path) -> tuple[int, int]:
    """(step of state.safetensors, step of latest.safetensors), -1 where absent."""
    state = run / "state.safetensors"
    latest = run / "latest.safetensors"
    steps = [-1, -1]
    if state.is_file():
        with safe_open(state, "pt") as file:
            steps[0] = json.loads(file.metadata()["progress"])["step"]
    if latest.is_file():
        steps[1] = neuralizer.load(latest).provenance["step"]
    return steps[0], steps[1]


def _assert_every_checkpoint_loads(run: Path) -> None:
    config = ModelConfig(channels=TINY["channels"], stages=TINY["stages"])
    for path in run.glob("*.safetensors"):
        if path.name == "state.safetensors":
            model = Neuralizer(config)
            load_state(path, model, torch.optim.Adam(model.parameters()))
        else:
            neuralizer.load(path)
    read_log(run / "log.jsonl") if (run / "log.jsonl").exists() else None


def test_sigkill_at_random_moments_then_resume_gives_the_uninterrupted_result(tmp_path, forkserver):
    rng = np.random.default_rng(2026)
    straight = TrainConfig.from_dict({**TINY, "run_dir": str(tmp_path / "straight")})
    config_path = tmp_path / "killed.json"
    config_path.write_text(json.dumps({**TINY, "run_dir": str(tmp_path / "killed")}))
    run = tmp_path / "killed"
    argv = ["train", str(config_path), "--resume"]

    previous, kills, mid_write, in_startup = (-1, -1), 0, 0, 0
    for _ in range(CYCLES):
        process = forkserver.Process(target=main, args=(argv,))
        process.start()
        # Half the kills land anywhere after the start (imports are done: setup, resume,
        # sampler building), half after the first step of this cycle is logged.
        if rng.random() < 0.5:
            time.sleep(rng.uniform(0.0, 0.4))
        else:
            log = run / "log.jsonl"
            seen = len(read_log(log)) if log.is_file() else 0
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and process.is_alive():
                if log.is_file() and len(read_log(log)) > seen:
                    break
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.5))
        assert process.is_alive(), "the run finished before it was killed: raise max_steps"
        process.kill()  # SIGKILL
        process.join()
        assert process.exitcode == -9
        kills += 1
        mid_write += any(run.glob(".*.tmp"))  # a temporary file left: killed while writing
        _assert_every_checkpoint_loads(run)
        steps = _saved_step(run)
        in_startup += steps == previous
        assert steps[0] >= previous[0] and steps[1] >= previous[1], (previous, steps)
        previous = steps

    assert kills == CYCLES and previous[0] > 0
    started = time.monotonic()
    assert main(argv) == 0  # the last resume runs to the end
    resumed_in = time.monotonic() - started
    train(straight)
    assert not list(run.glob(".*.tmp"))  # the resume cleaned up what the kills left
    killed = neuralizer.load(run / "latest.safetensors").state_dict()
    reference = neuralizer.load(tmp_path / "straight" / "latest.safetensors").state_dict()
    for key, value in reference.items():
        assert torch.equal(value, killed[key]), key
    logged = [r["step"] for r in read_log(run / "log.jsonl") if "loss" in r]
    assert logged == list(range(1, TINY["max_steps"] + 1))
    print(
        f"{kills} SIGKILLs: {mid_write} left a temporary file (killed mid-write), "
        f"{in_startup} before any new checkpoint; last resume from step {previous[0]} to "
        f"{TINY['max_steps']} in {resumed_in:.1f} s"
    )


def test_torn_log_line_is_dropped_on_resume(tmp_path):
    config = TrainConfig.from_dict({**TINY, "max_steps": 4, "run_dir": str(tmp_path / "run")})
    train(config)
    log = tmp_path / "run" / "log.jsonl"
    log.write_text(log.read_text() + '{"step": 5, "loss": 0.1')  # a kill mid-append
    (tmp_path / "run" / ".state.safetensors.abc.tmp").write_bytes(b"half a file")
    extended = TrainConfig.from_dict({**config.to_dict(), "max_steps": 6})
    train(extended, resume=True)
    assert [r["step"] for r in read_log(log) if "loss" in r] == list(range(1, 7))
    assert not list((tmp_path / "run").glob(".*.tmp"))
