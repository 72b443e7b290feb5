"""Resume a run from a burst bundle for a given time, then write its state into a folder.

Run by ``scripts/gpu_burst.sh BUNDLE MINUTES OUT`` (which sets up the imports). The run resumes
in a scratch copy of the bundle's run directory (the bundle is never written to), with
``num_workers`` set to every core (a resume may change it), on the GPU when there is one
(``neuralizer train`` picks it, with bf16 autocast). When MINUTES have passed, the run is asked
to stop as Ctrl-C would (SIGTERM to the training process only; its data workers keep going until
it closes them): it finishes its step, writes its state and returns. If it has not returned
``--grace`` seconds later it is killed, and the last checkpoint stands. Then the run's files go
into OUT, with ``burst-log.txt`` (the training's output) and ``burst.json`` (steps before and
after, wall time, device, workers, episodes per second).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUN_FILES = ("state.safetensors", "latest.safetensors", "best.safetensors", "log.jsonl")
# ``neuralizer train config.json --resume`` without the command line's parser, which imports
# every command's module (prediction's reads NIfTI with nibabel, which a burst machine lacks).
TRAIN = """
from neuralizer.train import TrainConfig, train
progress = train(TrainConfig.from_file("config.json"), resume=True)
print(f"stopped at step {progress.step}; best validation loss {progress.best_val:.4f}")
"""


def _minutes(text: str) -> float:
    value = float(text)
    if not 0 < value < 24 * 60:
        raise argparse.ArgumentTypeError(f"minutes must be in (0, 1440), got {text}")
    return value


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path, help="a folder made by scripts/make_burst_bundle.py")
    parser.add_argument("minutes", type=_minutes, help="training time (decimals allowed)")
    parser.add_argument("output", type=Path, help="where the run's files go (new or empty)")
    cores = len(os.sched_getaffinity(0))
    parser.add_argument("--workers", type=int, default=cores, help="default: every core")
    parser.add_argument("--grace", type=float, default=300.0, help="seconds to stop (300)")
    args = parser.parse_args(argv)
    if not (args.bundle / "burst.json").is_file():
        parser.error(f"{args.bundle} is not a burst bundle (no burst.json)")
    if args.output.exists() and any(args.output.iterdir()):
        parser.error(f"{args.output} is not empty")
    if args.workers < 0:
        parser.error("--workers must be at least 0")
    return args


def _state_step(path: Path) -> int:
    """The step of a training state (its metadata only)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as state:
        return int(json.loads(state.metadata()["progress"])["step"])


def _log_summary(log: Path, first_step: int) -> dict:
    """Last speed and validations after the resume at ``first_step``."""
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    steps = [r for r in records if "loss" in r and r["step"] > first_step]
    validations = [r for r in records if r.get("event") == "validation" and r["step"] > first_step]
    return {
        "episodes_per_s": steps[-1]["episodes_per_s"] if steps else None,
        "train_seconds": steps[-1]["seconds"] if steps else 0.0,
        "validations": [{"step": r["step"], "val_loss": r["val_loss"]} for r in validations],
    }


def _device() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"


def _train(command: list[str], work: Path, env: dict, log: Path, args) -> tuple[int, str]:
    """Run ``command`` for ``args.minutes``, then stop it; (exit status, how it ended)."""
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            return process.wait(timeout=args.minutes * 60), "the run ended by itself"
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=args.grace), "stopped after its minutes"
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait(), f"killed: not stopped {args.grace:.0f} s after its minutes"


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    bundle = args.bundle.resolve()
    manifest = json.loads((bundle / "burst.json").read_text())
    args.output.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="neuralizer-burst-"))
    try:
        run = work / manifest["run_dir"]
        shutil.copytree(bundle / "run", run)
        config = json.loads((bundle / "config.json").read_text())
        (work / "config.json").write_text(json.dumps({**config, "num_workers": args.workers}))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(bundle / "src"), *filter(None, [env.get("PYTHONPATH")])]
        )
        env.setdefault("NEURALIZER_CACHE", str(work / "cache"))
        if (bundle / "anatomy").is_dir():
            env["NEURALIZER_ANATOMY"] = str(bundle / "anatomy")
        command = [sys.executable, "-c", TRAIN]
        started = time.monotonic()
        status, ended = _train(command, work, env, args.output / "burst-log.txt", args)
        wall = time.monotonic() - started
        for name in (*RUN_FILES, "config.json"):
            if (run / name).is_file():
                shutil.copy2(run / name, args.output / name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = {
        "from_step": manifest["step"],
        "step": _state_step(args.output / "state.safetensors"),
        **_log_summary(args.output / "log.jsonl", manifest["step"]),
        "minutes": args.minutes,
        "wall_seconds": round(wall, 1),
        "ended": ended,
        "exit_status": status,
        "device": _device(),
        "num_workers": args.workers,
    }
    (args.output / "burst.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary))
    if status != 0 and summary["step"] == manifest["step"]:
        print(f"the run made no step (exit status {status}); see {args.output / 'burst-log.txt'}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
