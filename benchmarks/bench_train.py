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
``--channels-last`` also times each form on a copy of the model in the channels_last layout;
``--compile`` also times each form on a ``torch.compile``d copy (inductor; the first step at
each L, which compiles, is reported apart as compile time).

``--workers N [N ...]`` instead times the real training loop of ``--config`` (its sampler, its
subjects from the data cache, the same data loader as ``neuralizer.train``) with ``num_workers``
N: ``--rounds`` rounds of ``--steps`` steps each, every setting on the same steps of a round
(interleaved), episodes per second over the steps after each loader's first batch.

    python benchmarks/bench_train.py --output benchmarks/results/bench_train.json
    python benchmarks/bench_train.py --runs 2 --micro-members 0 24 16 \
        --output benchmarks/results/bench_micro.json
    python benchmarks/bench_train.py --runs 2 --micro-members 16 --split \
        --contexts 1 4 8 12 16 --output benchmarks/results/bench_split.json
    python benchmarks/bench_train.py --runs 3 --micro-members 16 --split --only-split \
        --compile --contexts 1 8 16 --output benchmarks/results/bench_compile.json
    python benchmarks/bench_train.py --workers 0 1 2 --config configs/v2.json \
        --output benchmarks/results/bench_workers.json
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
    return times  # the first step warms up the convolution primitives (and compiles)


def compile_model(model):
    """``torch.compile`` of the model (inductor), keeping the module's methods (``no_sync``)."""
    compiled = torch.compile(model)
    compiled.train()
    return compiled


def worker_rates(args: argparse.Namespace) -> None:
    """Episodes per second of the real training loop per ``num_workers`` (see the module doc)."""
    from neuralizer.train.data import build_samplers
    from neuralizer.train.loop import _Batches, _identity

    cfg = TrainConfig.from_file(args.config)
    train_sampler, _ = build_samplers(cfg)
    model = Neuralizer(cfg.model).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    rates: dict[int, list[float]] = {n: [] for n in args.workers}
    starts: dict[int, list[float]] = {n: [] for n in args.workers}
    for round_ in range(args.rounds):
        first = args.first_step + round_ * (args.steps + 1)
        for workers in args.workers:  # the same steps for every setting
            batches = _Batches(train_sampler, lambda s: s, first, first + args.steps + 1)
            loader = torch.utils.data.DataLoader(
                batches, batch_size=None, num_workers=workers, collate_fn=_identity,
                generator=torch.Generator().manual_seed(0),
            )  # fmt: skip
            start = time.perf_counter()
            for index, batch in enumerate(loader):
                train_step(model, optimizer, batch, cfg, torch.device("cpu"))
                if index == 0:  # the loader's start and its first batch stand apart
                    starts[workers].append(time.perf_counter() - start)
                    start = time.perf_counter()
            seconds = time.perf_counter() - start
            rates[workers].append(cfg.sampler.batch_size * args.steps / seconds)
            print(f"round {round_} num_workers={workers}: {rates[workers][-1]:.3f} episodes/s "
                  f"(first batch and step {starts[workers][-1]:.1f} s)", flush=True)  # fmt: skip
        # After every round, so that a run stopped early keeps its complete rounds.
        _write(
            args,
            {
                "episodes_per_s": rates,
                "first_step_s": starts,
                "rounds_done": round_ + 1,
                "mean_episodes_per_s": {n: statistics.fmean(r) for n, r in rates.items()},
            },
        )


def _write(args: argparse.Namespace, result: dict) -> None:
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps({"args": vars(args) | {"output": str(args.output)},
                                           **result}, indent=1))  # fmt: skip


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
    parser.add_argument("--compile", action="store_true", help="also time torch.compile forms")
    parser.add_argument("--only-split", action="store_true", help="with --split: no plain form")
    parser.add_argument("--workers", type=int, nargs="+", help="time the real loop per workers")
    parser.add_argument("--config", default="configs/v2.json", help="the run of --workers")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5, help="steps per round and setting")
    parser.add_argument("--first-step", type=int, default=10_000)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.workers:
        worker_rates(args)
        return
    model = Neuralizer(ModelConfig(channels=args.channels)).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    # Model variants: "" (as made), "channels_last" (the same weights in oneDNN's native layout)
    # and "compile" (torch.compile of a copy), each with its own Adam.
    variants = [""] + ["channels_last"] * args.channels_last + ["compile"] * args.compile
    splits = (True,) if args.only_split else (False, True)[: 1 + args.split]
    forms = [(m, split, v) for m in args.micro_members for split in splits for v in variants]
    names = {f: f"micro_batch_members={f[0]}{' split_algebra' if f[1] else ''}"
                f"{' ' + f[2] if f[2] else ''}" for f in forms}  # fmt: skip
    medians: dict[str, dict[int, float]] = {names[f]: {} for f in forms}
    first_step: dict[str, dict[int, float]] = {names[f]: {} for f in forms}
    copies = {"channels_last": copy.deepcopy(model).to(memory_format=torch.channels_last),
              "compile": compile_model(copy.deepcopy(model))}  # fmt: skip
    models = {"": (model, optimizer)} | {
        v: (m, torch.optim.Adam(m.parameters(), lr=1e-4)) for v, m in copies.items()
    }
    contexts = args.contexts or range(1, args.max_context + 1)
    for n_context in contexts:
        for form in forms:  # interleaved, so that drifts hit every form alike
            times = step_times(n_context, args, *models[form[2]], *form[:2])
            medians[names[form]][n_context] = statistics.median(times[1:])
            first_step[names[form]][n_context] = times[0]
            print(f"L={n_context} {names[form]}: {medians[names[form]][n_context]:.2f} s per "
                  f"step (first {times[0]:.1f} s)", flush=True)  # fmt: skip
    rates = {}
    for name, by_l in medians.items():
        mean_step = statistics.fmean(by_l.values())
        rates[name] = args.batch_size / mean_step
        print(f"{name}: mean step over L={list(contexts)}: "
              f"{mean_step:.2f} s -> {rates[name]:.2f} episodes/s")  # fmt: skip
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        result = {"args": vars(args) | {"output": str(args.output)}, "median_step_s": medians,
                  "first_step_s": first_step, "episodes_per_s": rates}  # fmt: skip
        args.output.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
