"""Data throughput vs one training step (issue 4 acceptance).

Batch generation: ``EpisodeSampler(SynthSliceSource("train", ...)).batch(i)`` with the shipped
training configuration (B = 8 episodes, 2 mm, L = 8 — the top of the L ≤ 8 range), subjects read
from a warm disk cache; it renders, augments and collates 8 × (1 + 8) pairs on the calling thread.
Training step: forward + backward of ``Neuralizer(ModelConfig(channels=32))`` on that batch with
``torch.set_num_threads(2)`` (and, for reference, the Adam update as well).

    python benchmarks/bench_data.py --output benchmarks/results/bench_data.json

``--people-fraction F`` mixes in subjects of real anatomy (:mod:`neuralizer.data.real`): a
``MixedSliceSource`` of the MNI-based and the people subjects, with episodes drawn from the people
with probability F (``SamplerConfig.source_weights``), as ``TrainConfig.people_fraction`` does.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from neuralizer.data import SynthConfig, SynthSliceSource
from neuralizer.data.mixed import MixedSliceSource
from neuralizer.data.real import PeopleConfig, PeopleSliceSource
from neuralizer.model import ModelConfig, Neuralizer
from neuralizer.tasks.sampler import EpisodeSampler, SamplerConfig


def _median_time(fn, runs: int) -> tuple[float, list[float]]:
    fn()  # warm-up
    times = []
    for i in range(runs):
        start = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-subjects", type=int, default=32)
    parser.add_argument("--n-context", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--voxel-size-mm", type=float, default=2.0)
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--people-fraction", type=float, default=0.0)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(2)

    source = SynthSliceSource(
        "train", args.n_subjects, SynthConfig(voxel_size_mm=args.voxel_size_mm)
    )
    weights = {"mni152": 1 - args.people_fraction, "people": args.people_fraction}
    if args.people_fraction > 0:
        people = PeopleConfig(voxel_size_mm=args.voxel_size_mm)
        parts = {"people": PeopleSliceSource("train", args.n_subjects, people)}
        source = MixedSliceSource({"mni152": source, **parts})
    start = time.perf_counter()
    for part in getattr(source, "parts", {"": source}).values():
        for index in range(len(part)):
            part.volumes(index)  # warm the cache (built on the first run, read afterwards)
    cache_s = time.perf_counter() - start
    config = SamplerConfig(
        batch_size=args.batch_size, min_context=args.n_context, max_context=args.n_context, seed=0,
        source_weights=weights,
    )  # fmt: skip
    sampler = EpisodeSampler(source, config)
    batch_s, batch_times = _median_time(lambda i=0: sampler.batch(1000 + i), args.runs)
    batch = sampler.batch(0)

    torch.manual_seed(0)
    model = Neuralizer(ModelConfig(channels=args.channels)).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def forward_backward(i: int = 0) -> None:
        model.zero_grad(set_to_none=True)
        out = model(batch.target_in, batch.context_in, batch.context_out, fast=False)
        torch.nn.functional.mse_loss(out, batch.target_out).backward()

    def full_step(i: int = 0) -> None:
        forward_backward()
        optimizer.step()

    step_s, step_times = _median_time(forward_backward, args.runs)
    full_s, _ = _median_time(full_step, max(3, args.runs // 2))
    result = {
        "machine": platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "shape": list(batch.context_in.shape),
        "people_fraction": args.people_fraction,
        "cache_warmup_s": cache_s,
        "batch_median_s": batch_s,
        "batch_times_s": batch_times,
        "step_forward_backward_median_s": step_s,
        "step_forward_backward_times_s": step_times,
        "step_with_adam_median_s": full_s,
        "batch_over_step": batch_s / step_s,
        "acceptance_max_ratio": 0.30,
    }
    print(json.dumps({k: v for k, v in result.items() if not k.endswith("times_s")}, indent=1))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
