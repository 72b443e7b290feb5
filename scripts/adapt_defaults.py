"""Choose the defaults of ``--adapt`` (steps K, learning rate, which weights move) on the
VALIDATION split (issue 29): the test subjects are never read.

Experiment 1's tasks and pairs (training subjects as the context pool), with targets from the
validation subjects and task instances drawn with another seed (1) than the experiments' (0).
For every task instance, context size n, learning rate and parameter set, one adaptation runs
to the largest K and is scored after each K of ``--steps`` on the way (the steps before K are
the same whatever the later ones), against the plain model (K = 0) on the same pairs. Rows are
written to ``--output`` (JSON, atomically) after each adaptation, and a rerun skips them.

    python scripts/adapt_defaults.py --output docs/results/adapt-defaults.json

The summary (mean score relative to the plain model, per setting, over tasks) goes in
docs/adapt.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from neuralizer import load
from neuralizer.evaluate.config import EvalConfig, UNetBudget
from neuralizer.evaluate.metrics import score
from neuralizer.evaluate.run import neuralizer_predictor
from neuralizer.evaluate.sets import build_instances
from neuralizer.files import write_atomically
from neuralizer.infer.adapt import AdaptConfig, adapt_model

TASKS = ("segmentation", "skull_stripping", "denoising", "modality_transfer")


def validation_config(n_targets: int, sizes: list[int]) -> EvalConfig:
    """Experiment 1's episodes (configs/eval/exp1-baselines.json), targets from "val"."""
    base = EvalConfig.from_file("configs/eval/exp1-baselines.json")
    return EvalConfig(
        name="adapt-defaults", output="/dev/null", tasks=TASKS, source=base.source,
        n_targets=n_targets, pool_split="train", pool_size=max(sizes), context_sizes=tuple(sizes),
        n_train_subjects=base.n_train_subjects, instances_per_task=1, per_class=base.per_class,
        methods=("neuralizer",), models=dict(base.models), seed=1, threads=1,
        target_split="val", unet=UNetBudget(train_sizes=(1,)),
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, default=Path("docs/results/adapt-defaults.json"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[8])
    parser.add_argument("--steps", type=int, nargs="+", default=[25, 50, 100])
    parser.add_argument("--lrs", type=float, nargs="+", default=[1e-4, 3e-4])
    parser.add_argument("--parameters", nargs="+", default=["all", "decoder"])
    parser.add_argument("--targets", type=int, default=4)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = validation_config(args.targets, args.sizes)
    model = load(config.models["neuralizer-seen"])
    rows = json.loads(args.output.read_text())["rows"] if args.output.is_file() else []
    done = {(r["task"], r["n"], r["lr"], r["parameters"]) for r in rows}

    def save() -> None:
        text = json.dumps({"config": "scripts/adapt_defaults.py", "rows": rows}, indent=1)
        write_atomically(args.output, (text + "\n").encode())

    for task in args.tasks:
        inst = build_instances(config, task, 0)[0]
        targets = list(range(len(inst.target_in)))

        def evaluate(net, n, inst=inst, targets=targets) -> float:
            pred = neuralizer_predictor(net, seed=config.seed)(inst, n, targets)
            return float(np.mean(score(pred, inst.target_out, inst.segmentation_like)))

        for n in args.sizes:
            plain = evaluate(model, n)
            for lr in args.lrs:
                for which in args.parameters:
                    if (task, n, lr, which) in done:
                        continue
                    scores: dict[int, float] = {}

                    def on_step(k, net, n=n, scores=scores) -> None:
                        if k in args.steps:
                            scores[k] = evaluate(net, n)

                    outputs = inst.pool_out[None, :n]
                    if inst.segmentation_like:
                        outputs = (outputs >= 0.5).astype(np.float32)
                    settings = AdaptConfig(steps=max(args.steps), lr=lr, parameters=which)
                    start = time.perf_counter()
                    adapt_model(model, inst.pool_in[None, :n], [outputs], inst.segmentation_like,
                                settings, on_step=on_step)  # fmt: skip
                    rows.append({
                        "task": task, "n": n, "lr": lr, "parameters": which, "plain": plain,
                        "scores": {str(k): v for k, v in scores.items()},
                        "seconds": round(time.perf_counter() - start, 1),
                        "threads": args.threads,
                    })  # fmt: skip
                    save()
                    print(json.dumps(rows[-1]), flush=True)
    summarise(rows)


def summarise(rows: list[dict]) -> None:
    """Print the mean score relative to the plain model per (lr, parameters, K), over rows."""
    settings: dict[tuple, list[float]] = {}
    for r in rows:
        for k, v in r["scores"].items():
            settings.setdefault((r["lr"], r["parameters"], int(k)), []).append(v / r["plain"])
    for (lr, which, k), ratios in sorted(settings.items()):
        print(f"lr {lr:g} {which:8s} K={k:4d}: {np.mean(ratios):.4f} over {len(ratios)} rows")


if __name__ == "__main__":
    main()
