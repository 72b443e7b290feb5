"""Does ``torch.compile`` (inductor, CPU) make inference faster than the hand-fused fast path?
(issue 31, docs/performance.md)

One process: the fast path (eager), the plain form by the split algebra (eager), and that form
compiled with ``torch.compile``, on one random input at the given size, L and width. Reports
each form's best of ``--runs`` after a warm-up, the compiled form's first call (compilation
included: what a CLI process pays once), and its largest difference from the plain form
relative to the output's largest magnitude.

    python benchmarks/probe_compile.py --size 192 --context 8 --threads 2 \
        --output benchmarks/results/probe_compile.json
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import time
from pathlib import Path

import torch
from bench_model import _timed

from neuralizer.files import write_atomically
from neuralizer.model import ModelConfig, Neuralizer


def _best(fn, runs: int) -> float:
    """The fastest of ``runs`` calls after a warm-up (bench_model's timing loop)."""
    return min(_timed(fn, runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--context", type=int, default=8)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = ModelConfig(channels=args.channels, stages=4)
    net = Neuralizer(config).eval()
    size, n = args.size, args.context
    x = torch.rand(1, config.in_channels, size, size)
    c_in = torch.rand(1, n, config.in_channels, size, size)
    c_out = torch.rand(1, n, config.out_channels, size, size)
    result: dict = {"args": vars(args) | {"output": str(args.output)},
                    "host": platform.node(), "torch": torch.__version__}  # fmt: skip
    with torch.no_grad():
        reference = net(x, c_in, c_out, fast=False)
        result["fast_eager_s"] = _best(lambda: net(x, c_in, c_out, fast=True), args.runs)
        split = functools.partial(net.plain_forward, split=True)
        result["split_eager_s"] = _best(lambda: split(x, c_in, c_out), args.runs)
        compiled = torch.compile(split)
        start = time.perf_counter()
        out = compiled(x, c_in, c_out)
        result["compiled_first_call_s"] = time.perf_counter() - start
        result["compiled_max_rel_diff"] = float(
            (out - reference).abs().max() / reference.abs().max()
        )
        result["split_compiled_s"] = _best(lambda: compiled(x, c_in, c_out), args.runs)
    print(json.dumps(result, indent=1))
    if args.output:
        write_atomically(args.output, (json.dumps(result, indent=1) + "\n").encode())


if __name__ == "__main__":
    main()
