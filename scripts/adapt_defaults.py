"""Choose the defaults of ``--adapt`` (steps K, learning rate, which weights move) on the
VALIDATION split (issue 29): the test subjects are never read.

Experiment 1's tasks and pairs (training subjects as the context pool), with targets from the
validation subjects and task instances drawn with another seed (1) than the experiments' (0).
For every task instance, context size n, learning rate and parameter set, one adaptation runs
to the largest K and is scored after each K of ``--steps`` on the way (the steps before K are
the same whatever the later ones), against the plain model (K = 0) on the same pairs. Rows are
written to ``--output`` (JSON, atomically) after each adaptation, and a rerun skips them.

    python scripts/adapt_defaults.py --output docs/results/adapt-defaults.json

``--instances`` draws more task instances (0 alone by default). ``--guard`` also runs the guard's
trial (:func:`~neuralizer.infer.adapt.trial_adaptation`, at the largest K) for each row and
records its held-out losses and the trial copy's score: the summary then gives the guarded
adaptation (the adaptation when the trial lowers the held-out loss, else the plain model) and
the trial copy alone (the same rule, without the second adaptation on every pair).

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
from neuralizer.infer.adapt import AdaptConfig, adapt_model, trial_adaptation

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
    parser.add_argument("--guard", action="store_true", help="also run the guard's trial")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = validation_config(args.targets, args.sizes)
    model = load(config.models["neuralizer-seen"])
    rows = json.loads(args.output.read_text())["rows"] if args.output.is_file() else []
    done = {(r["task"], r.get("instance", 0), r["n"], r["lr"], r["parameters"]) for r in rows}

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
        for lr in args.lrs:
            for which in args.parameters:
                if (task, index, n, lr, which) in done:
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
                settings = AdaptConfig(steps=max(args.steps), lr=lr, parameters=which)
                start = time.perf_counter()
                adapt_model(*pairs, settings, on_step=on_step)
                row = {
                    "task": task, "instance": index, "n": n, "lr": lr, "parameters": which,
                    "plain": plain, "scores": {str(k): v for k, v in scores.items()},
                    "seconds": round(time.perf_counter() - start, 1), "threads": args.threads,
                }  # fmt: skip
                if args.guard:
                    trial, before, after = trial_adaptation(*pairs, settings)
                    row["guard"] = {"before": before, "after": after, "trial": evaluate(trial, n)}
                rows.append(row)
                save()
                print(json.dumps(row), flush=True)


def summarise(rows: list[dict]) -> None:
    """Print the mean score relative to the plain model per (lr, parameters, K), over rows."""
    settings: dict[tuple, list[float]] = {}
    for r in rows:
        for k, v in r["scores"].items():
            settings.setdefault((r["lr"], r["parameters"], int(k)), []).append(v / r["plain"])
    for (lr, which, k), ratios in sorted(settings.items()):
        print(f"lr {lr:g} {which:8s} K={k:4d}: {np.mean(ratios):.4f} over {len(ratios)} rows")
    guarded = [r for r in rows if "guard" in r]
    for n in sorted({r["n"] for r in guarded}):
        at_n = [r for r in guarded if r["n"] == n]
        ratios = np.array([_guard_ratios(r) for r in at_n])
        declined = sum(not r["guard"]["after"] < r["guard"]["before"] for r in at_n)
        names = ("unguarded", "guarded", "trial copy")
        means, lows = ratios.mean(0), ratios.min(0)
        parts = [f"{a} {m:.4f} ({lo:.3f})" for a, m, lo in zip(names, means, lows, strict=True)]
        print(f"n={n:3d} over {len(at_n)} rows, {declined} declined; relative to plain, mean "
              f"(lowest): {', '.join(parts)}")  # fmt: skip


def _guard_ratios(row: dict) -> tuple[float, float, float]:
    """A guarded row's scores relative to plain: adapted at the largest K, guarded (adapted if
    the trial lowered the held-out loss, else plain), the trial copy under the same rule."""
    adapted = row["scores"][str(max(int(k) for k in row["scores"]))] / row["plain"]
    kept = row["guard"]["after"] < row["guard"]["before"]
    return adapted, adapted if kept else 1.0, row["guard"]["trial"] / row["plain"] if kept else 1.0


if __name__ == "__main__":
    main()
