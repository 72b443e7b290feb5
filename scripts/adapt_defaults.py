"""Choose the defaults of ``--adapt`` (steps K, learning rate, which weights move) on the
VALIDATION split (issue 29): the test subjects are never read.

Experiment 1's tasks and pairs (training subjects as the context pool), with targets from the
validation subjects and task instances drawn with another seed (1) than the experiments' (0).
For every task instance, context size n, learning rate and parameter set, one adaptation runs
to the largest K and is scored after each K of ``--steps`` on the way (the steps before K are
the same whatever the later ones), against the plain model (K = 0) on the same pairs. Rows are
written to ``--output`` (JSON, atomically) after each adaptation, and a rerun skips them.

    python scripts/adapt_defaults.py --output docs/results/adapt-defaults.json

``--instances`` draws more task instances (0 alone by default).

The summary (mean score relative to the plain model, per setting, over tasks) goes in
docs/adapt.md.
"""

from __future__ import annotations

import argparse
import itertools
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
from neuralizer.infer.adapt import DEFAULT_BATCH, AdaptConfig, adapt_model

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
    parser.add_argument("--instances", type=int, nargs="+", default=[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[DEFAULT_BATCH])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = validation_config(args.targets, args.sizes)
    model = load(config.models["neuralizer-seen"])
    rows = json.loads(args.output.read_text())["rows"] if args.output.is_file() else []
    done = {(r["task"], r.get("instance", 0), r["n"], r["lr"], r["parameters"],
             r.get("batch", DEFAULT_BATCH)) for r in rows}  # fmt: skip

    def save() -> None:
        text = json.dumps({"config": "scripts/adapt_defaults.py", "rows": rows}, indent=1)
        write_atomically(args.output, (text + "\n").encode())

    for task in args.tasks:
        for index in args.instances:
            _instance_rows(model, config, task, index, args, done, rows, save)
    summarise(rows)


def _instance_rows(model, config, task, index, args, done, rows, save) -> None:
    """Append task instance ``index``'s rows to ``rows``, saving after each."""
    inst = build_instances(config, task, index)[0]
    targets = list(range(len(inst.target_in)))

    def evaluate(net, n) -> float:
        pred = neuralizer_predictor(net, seed=config.seed)(inst, n, targets)
        return float(np.mean(score(pred, inst.target_out, inst.segmentation_like)))

    for n in args.sizes:
        plain = None
        for lr, which, batch in itertools.product(args.lrs, args.parameters, args.batches):
            if (task, index, n, lr, which, batch) in done:
                continue
            plain = evaluate(model, n) if plain is None else plain
            scores: dict[int, float] = {}

            def on_step(k, net, n=n, scores=scores) -> None:
                if k in args.steps:
                    scores[k] = evaluate(net, n)

            outputs = inst.pool_out[None, :n]
            if inst.segmentation_like:
                outputs = (outputs >= 0.5).astype(np.float32)
            pairs = (model, inst.pool_in[None, :n], [outputs], inst.segmentation_like)
            settings = AdaptConfig(steps=max(args.steps), lr=lr, parameters=which, batch=batch)
            start = time.perf_counter()
            adapt_model(*pairs, settings, on_step=on_step)
            row = {
                "task": task, "instance": index, "n": n, "lr": lr, "parameters": which,
                "batch": batch, "plain": plain, "scores": {str(k): v for k, v in scores.items()},
                "seconds": round(time.perf_counter() - start, 1), "threads": args.threads,
            }  # fmt: skip
            rows.append(row)
            save()
            print(json.dumps(row), flush=True)


def summarise(rows: list[dict]) -> None:
    """Print the mean score relative to the plain model (and the lowest) per setting and n."""
    settings: dict[tuple, list[float]] = {}
    for r in rows:
        for k, v in r["scores"].items():
            key = (r["lr"], r["parameters"], r.get("batch", DEFAULT_BATCH), r["n"], int(k))
            settings.setdefault(key, []).append(v / r["plain"])
    for (lr, which, batch, n, k), ratios in sorted(settings.items()):
        print(
            f"lr {lr:g} {which:8s} batch {batch} n={n:3d} K={k:4d}: {np.mean(ratios):.4f} "
            f"(lowest {min(ratios):.3f}) over {len(ratios)} rows"
        )


if __name__ == "__main__":
    main()
