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

import nibabel as nib
import numpy as np
import pytest
import torch
from safetensors import safe_open

import neuralizer
from neuralizer.cli import main
from neuralizer.model import ModelConfig, Neuralizer, save_checkpoint
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


def _wait_then_kill(process, seconds: float, progress, cap: int) -> None:
    """Let ``process`` run for ``seconds``, or until ``progress()`` reaches ``cap``, whichever is
    first, then SIGKILL it. The cap keeps a fast machine from finishing the work between two
    kills; the sleep, in 2 ms polls, keeps the moment random on a slow one."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and progress() < cap and process.is_alive():
        time.sleep(0.002)
    assert process.is_alive(), "the run finished before it was killed"
    process.kill()  # SIGKILL
    process.join()
    assert process.exitcode == -9


def _logged_steps(log: Path) -> int:
    return sum(1 for r in read_log(log) if "loss" in r) if log.is_file() else 0


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

    log = run / "log.jsonl"
    previous, kills, mid_write, in_startup = (-1, -1), 0, 0, 0
    for cycle in range(CYCLES):
        process = forkserver.Process(target=main, args=(argv,))
        process.start()
        # A cycle may log at most its share of the steps left (the last resume runs the rest),
        # so that however fast the machine, no cycle finishes the run.
        seen = _logged_steps(log)
        cap = seen + max(1, (TINY["max_steps"] - seen) // (CYCLES - cycle + 1))
        # Half the kills land anywhere after the start (imports are done: setup, resume,
        # sampler building), half after the first step of this cycle is logged.
        if rng.random() < 0.5:
            _wait_then_kill(process, rng.uniform(0.0, 0.4), lambda: _logged_steps(log), cap)
        else:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and process.is_alive():
                if _logged_steps(log) > seen:
                    break
                time.sleep(0.005)
            _wait_then_kill(process, rng.uniform(0.0, 0.5), lambda: _logged_steps(log), cap)
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


# ---- folder-mode prediction ------------------------------------------------------------------

PREDICT_CYCLES = 20 if os.environ.get("NEURALIZER_RELIABILITY") == "long" else 6


def _head(size: int, shift: float) -> np.ndarray:
    grid = np.mgrid[:size, :size, :size] - (size - 1) / 2
    return ((np.sqrt((grid**2).sum(0)) < size / 3) * (50 + 2 * grid[0] + shift)).astype(np.float32)


def _volume(path: Path) -> np.ndarray:
    return np.asarray(nib.load(path).dataobj)


def test_sigkill_folder_prediction_then_rerun_skips_finished_and_redoes_the_rest(
    tmp_path, forkserver
):
    """Kill ``neuralizer predict -i DIR -o DIR`` at seeded random moments and rerun: what exists
    is always whole (equal to an uninterrupted run's), finished targets are not redone."""
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    scans = tmp_path / "scans"
    scans.mkdir()
    for i in range(3 * PREDICT_CYCLES):  # enough for a kill in every cycle
        nib.save(nib.Nifti1Image(_head(24, i), affine), scans / f"s{i:02d}.nii.gz")
    nib.save(nib.Nifti1Image(_head(24, 20), affine), tmp_path / "c.nii.gz")
    nib.save(nib.Nifti1Image((_head(24, 20) > 55).astype(np.uint8), affine), tmp_path / "m.nii.gz")
    torch.manual_seed(0)
    model = tmp_path / "tiny.safetensors"
    geometry = {"voxel_size_mm": 2.0, "image_size": [32, 32]}
    save_checkpoint(model, Neuralizer(ModelConfig(channels=4, stages=2)), provenance=geometry)

    def argv(out: str) -> list[str]:
        return ["predict", "-i", str(scans), "-o", str(tmp_path / out), "--model", str(model),
                "--context-in", str(tmp_path / "c.nii.gz"), "--context-out",
                str(tmp_path / "m.nii.gz"), "--ensemble", "3", "--uncertainty",
                str(tmp_path / f"{out}-sd"), "--threads", "1", "--device", "cpu",
                "--align", "none"]  # fmt: skip

    started = time.monotonic()
    assert main(argv("reference")) == 0
    straight = time.monotonic() - started
    reference = {p.name: _volume(p) for p in (tmp_path / "reference").iterdir()}
    reference_sd = {p.name: _volume(p) for p in (tmp_path / "reference-sd").iterdir()}
    out, out_sd = tmp_path / "killed", tmp_path / "killed-sd"

    rng = np.random.default_rng(7)
    per_target = straight / len(reference)
    mid_write, finished_seen = 0, []
    for _ in range(PREDICT_CYCLES):
        before = {p.name: p.stat().st_mtime_ns for p in out.glob("s*")}
        process = forkserver.Process(target=main, args=(argv("killed"),))
        process.start()
        # Half the kills land anywhere in the first 0.4 s (model, context, listing, cleanup),
        # half at a random moment of the target after the next one finished.
        if rng.random() < 0.5:
            time.sleep(rng.uniform(0.0, 0.4))
        else:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and process.is_alive():
                if len(list(out.glob("s*"))) > len(before):
                    break
                time.sleep(0.002)
            time.sleep(rng.uniform(0.0, per_target))
        assert process.is_alive(), "the run finished before it was killed: add targets"
        process.kill()  # SIGKILL
        process.join()
        assert process.exitcode == -9
        mid_write += any(p.name.endswith(".tmp") for p in out.glob(".*")) if out.is_dir() else 0
        # Whole files only: every visible output equals the uninterrupted run's, and a
        # prediction's uncertainty was written before it.
        names = (
            sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
            if out.is_dir()
            else []
        )
        for name in names:
            np.testing.assert_array_equal(_volume(out / name), reference[name])
            np.testing.assert_array_equal(_volume(out_sd / name), reference_sd[name])
        # Finished targets were skipped, not redone: their files were not rewritten.
        for name, mtime in before.items():
            assert (out / name).stat().st_mtime_ns == mtime, name
        finished_seen.append(len(names))

    for folder in (out, out_sd):  # as a kill in the middle of a write leaves them
        (folder / ".s00.nii.gz.x1y2z3.tmp").write_bytes(b"half a file")
    assert main(argv("killed")) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(reference)  # temporaries removed
    assert not any(p.name.startswith(".") for p in out_sd.iterdir())
    for name, expected in reference.items():
        np.testing.assert_array_equal(_volume(out / name), expected)
    assert finished_seen == sorted(finished_seen)  # progress only grows
    print(f"{len(finished_seen)} SIGKILLs of folder prediction: {mid_write} left a temporary "
          f"file; finished after each: {finished_seen} of {len(reference)}")  # fmt: skip


EVAL_CYCLES = 20 if os.environ.get("NEURALIZER_RELIABILITY") == "long" else 5


def _eval_run(config) -> None:
    from neuralizer.evaluate import run

    torch.set_num_threads(1)
    run(config)


def test_sigkill_evaluation_then_rerun_skips_finished_and_redoes_the_rest(tmp_path, forkserver):
    """Kill the smoke evaluation at seeded random moments and rerun: the results file only ever
    holds whole rows equal to an uninterrupted run's, finished rows are kept, the rest redone."""
    import dataclasses

    from neuralizer.evaluate import EvalConfig, run
    from neuralizer.evaluate.results import read_rows, row_key
    from neuralizer.evaluate.smoke import make_tiny_model

    smoke = EvalConfig.from_file(Path(__file__).resolve().parents[2] / "configs/eval/smoke.json")
    model = str(make_tiny_model(tmp_path / "tiny.safetensors"))

    def config(name: str):
        return dataclasses.replace(
            smoke,
            output=str(tmp_path / name / "results.csv"),
            models={"tiny": model},
            unet=dataclasses.replace(smoke.unet, run_dir=str(tmp_path / name / "unet")),
        )

    started = time.monotonic()
    torch.set_num_threads(1)
    run(config("reference"))
    straight = time.monotonic() - started
    reference = {row_key(r): r["value"] for r in read_rows(config("reference").output)}

    rng = np.random.default_rng(11)
    killed = config("killed")
    counts = []

    def finished() -> int:
        try:  # read while the run replaces the file (it may briefly be absent)
            return len(read_rows(killed.output, repair=False))
        except FileNotFoundError:
            return 0

    for cycle in range(EVAL_CYCLES):
        process = forkserver.Process(target=_eval_run, args=(killed,))
        process.start()
        # At most a share of the rows left per cycle, so that no cycle finishes the work.
        done = finished()
        cap = done + max(1, (len(reference) - done) // (EVAL_CYCLES - cycle + 1))
        _wait_then_kill(process, rng.uniform(0.5, max(1.0, straight / 2)), finished, cap)
        rows = read_rows(killed.output)
        for r in rows:  # whole rows only, each equal to the uninterrupted run's
            assert reference[row_key(r)] == r["value"]
        counts.append(len(rows))
    assert counts == sorted(counts)  # finished work is never lost
    torch.set_num_threads(1)
    run(killed)
    final = {row_key(r): r["value"] for r in read_rows(killed.output)}
    assert final == reference
    print(f"{EVAL_CYCLES} SIGKILLs of the evaluation: rows after each {counts} of {len(reference)}")
