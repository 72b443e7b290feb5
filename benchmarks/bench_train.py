"""Training throughput of the shipped configuration on this machine (episodes per second).

One optimiser step (forward, backward, Adam) of ``Neuralizer(ModelConfig(channels=32))`` on a batch
of B = 8 episodes of 96×96 slices, for every context size L = 1..8 (the shipped config draws
L ~ U{1..8}), median over ``--runs`` steps each after a warm-up. Episodes per second at the
config's L distribution = B / mean over L of the median step time. Data generation is measured by
``bench_data.py``.

``--micro-members M [M ...]`` also times each step as gradient accumulation over micro-batches
of at most M context members (``TrainConfig.micro_batch_members``; 0 = the whole batch at once),
the same training step as ``neuralizer.train`` runs, in one run for a fair ratio. ``--split`` also
times every such form with ``TrainConfig.split_algebra`` (the forward pass by the exact split
algebra), interleaved; ``--contexts`` times only the given L (their mean stands for U{1..max});
``--channels-last`` also times each form on a copy of the model in the channels_last layout.

    python benchmarks/bench_train.py --output benchmarks/results/bench_train.json
    python benchmarks/bench_train.py --runs 2 --micro-members 0 24 16 \
        --output benchmarks/results/bench_micro.json
    python benchmarks/bench_train.py --runs 2 --micro-members 16 --split \
        --contexts 1 4 8 12 16 --output benchmarks/results/bench_split.json
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import torch

from neuralizer.model import ModelConfig, Neuralizer
from neuralizer.tasks.episode import Batch
from neuralizer.train import TrainConfig
from neuralizer.train.loop import train_step


def step_times(
    n_context: int,
    args: argparse.Namespace,
    model,
    optimizer,
    members: int = 0,
    split: bool = False,
) -> list[float]:
    g = torch.Generator().manual_seed(n_context)
    size, batch = args.size, args.batch_size
    target_in = torch.rand(batch, 3, size, size, generator=g)
    context_in = torch.rand(batch, n_context, 3, size, size, generator=g)
    context_out = (torch.rand(batch, n_context, 1, size, size, generator=g) > 0.5).float()
    target_out = (torch.rand(batch, 1, size, size, generator=g) > 0.5).float()
    segmentation_like = torch.arange(batch) % 2 == 0
    episodes = Batch(target_in, target_out, context_in, context_out, (), segmentation_like, ())
    cfg = TrainConfig.from_dict(
        {"batch_size": batch, "micro_batch_size": batch, "micro_batch_members": members,
         "split_algebra": split}
    )  # fmt: skip
    times = []
    for _ in range(args.runs + 1):
        start = time.perf_counter()
        train_step(model, optimizer, episodes, cfg, torch.device("cpu"))
        times.append(time.perf_counter() - start)
    return times[1:]  # the first step warms up the convolution primitives


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-context", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--micro-members", type=int, nargs="+", default=[0])
    parser.add_argument("--split", action="store_true", help="also time split_algebra forms")
    parser.add_argument(
        "--channels-last", action="store_true", help="also time a channels_last copy of the model"
    )
    parser.add_argument("--contexts", type=int, nargs="+", help="only these L (default 1..max)")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = Neuralizer(ModelConfig(channels=args.channels)).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    layouts = (False, True)[: 1 + args.channels_last]
    forms = [(m, split, last) for m in args.micro_members
             for split in (False, True)[: 1 + args.split] for last in layouts]  # fmt: skip
    names = {f: f"micro_batch_members={f[0]}{' split_algebra' if f[1] else ''}"
                f"{' channels_last' if f[2] else ''}" for f in forms}  # fmt: skip
    medians: dict[str, dict[int, float]] = {names[f]: {} for f in forms}
    # The same weights in the channels_last layout (oneDNN's native one), with its own Adam.
    last_model = copy.deepcopy(model).to(memory_format=torch.channels_last)
    models = {False: (model, optimizer),
              True: (last_model, torch.optim.Adam(last_model.parameters(), lr=1e-4))}  # fmt: skip
    contexts = args.contexts or range(1, args.max_context + 1)
    for n_context in contexts:
        for form in forms:  # interleaved, so that drifts hit every form alike
            times = step_times(n_context, args, *models[form[2]], *form[:2])
            medians[names[form]][n_context] = statistics.median(times)
            print(f"L={n_context} {names[form]}: "
                  f"{medians[names[form]][n_context]:.2f} s per step", flush=True)  # fmt: skip
    rates = {}
    for name, by_l in medians.items():
        mean_step = statistics.fmean(by_l.values())
        rates[name] = args.batch_size / mean_step
        print(f"{name}: mean step over L={list(contexts)}: "
              f"{mean_step:.2f} s -> {rates[name]:.2f} episodes/s")  # fmt: skip
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        result = {"args": vars(args) | {"output": str(args.output)}, "median_step_s": medians,
                  "episodes_per_s": rates}  # fmt: skip
        args.output.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
