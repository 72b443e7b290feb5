"""Plain vs fast forward pass of Neuralizer, and the machine's practical convolution ceiling.

Each measurement runs in its own subprocess (so that peak memory is that form's alone):
median latency over ``--runs`` runs after one warm-up, peak resident memory, and GFLOP/s from the
convolution FLOPs that ``torch.utils.flop_counter`` counts for that form. The ceiling is one 3×3
conv 64→64 on a 32×64×192×192 channels_last input followed by GELU, as a whole.

    python benchmarks/bench_model.py --output benchmarks/results/bench_model.json
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from neuralizer.model import ModelConfig, Neuralizer
from neuralizer.model import fast as fast_module


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(fn, runs: int) -> list[float]:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def _count_flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def worker(form: str, n_context: int, size: int, channels: int, runs: int) -> dict:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    if form == "ceiling":
        conv = torch.nn.Conv2d(64, 64, 3, padding=1).eval()
        x = torch.rand(32, 64, size, size, generator=g).contiguous(
            memory_format=torch.channels_last
        )

        def fn():
            return F.gelu(conv(x))

    else:
        if form == "fast-contiguous":  # the fast path's algebra and chunking, without channels_last
            fast_module.MEMORY_FORMAT = torch.contiguous_format
        model = Neuralizer(ModelConfig(channels=channels)).eval()
        target_in = torch.rand(1, 3, size, size, generator=g)
        context_in = torch.rand(1, n_context, 3, size, size, generator=g)
        context_out = torch.rand(1, n_context, 1, size, size, generator=g)

        def fn():
            return model(target_in, context_in, context_out, fast=form != "plain")

    baseline = _rss_mb()  # before any forward pass: inputs and weights only
    with torch.inference_mode():
        times = _timed(fn, runs)
        flops = _count_flops(fn)
    peak = _rss_mb()
    median = statistics.median(times)
    return {
        "form": form,
        "n_context": n_context,
        "median_s": median,
        "times_s": times,
        "gflop": flops / 1e9,
        "gflops_per_s": flops / 1e9 / median,
        "peak_rss_mb": peak,
        "forward_peak_mb": peak - baseline,
    }


def _run(args: argparse.Namespace, form: str, n_context: int) -> dict:
    command = [sys.executable, __file__, "--worker", form, "--n-context", str(n_context)]
    command += [
        "--size",
        str(args.size),
        "--channels",
        str(args.channels),
        "--runs",
        str(args.runs),
    ]
    command += ["--threads", str(args.threads)]
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=["plain", "fast", "fast-contiguous", "ceiling"])
    parser.add_argument("--n-context", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.worker:
        print(
            json.dumps(worker(args.worker, args.n_context[0], args.size, args.channels, args.runs))
        )
        return

    results = [_run(args, "ceiling", 32)]
    for n_context in args.n_context:
        results += [_run(args, form, n_context) for form in ("plain", "fast")]
    results.append(_run(args, "fast-contiguous", max(args.n_context)))
    ceiling = results[0]["gflops_per_s"]
    print(
        f"ceiling: 3x3 conv 64->64 + GELU, 32x64x{args.size}x{args.size} channels_last: "
        f"{ceiling:.1f} GFLOP/s ({results[0]['median_s']:.3f} s)"
    )
    print(
        "| L | form | median s | GFLOP | GFLOP/s | % of ceiling | peak RSS MB | forward peak MB |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in results[1:]:
        print(
            f"| {r['n_context']} | {r['form']} | {r['median_s']:.3f} | {r['gflop']:.0f} | "
            f"{r['gflops_per_s']:.1f} | {100 * r['gflops_per_s'] / ceiling:.0f}% | "
            f"{r['peak_rss_mb']:.0f} | {r['forward_peak_mb']:.0f} |"
        )
    for n_context in args.n_context:
        plain, fast = (
            r for r in results[1:] if r["n_context"] == n_context and r["form"] != "fast-contiguous"
        )
        print(
            f"L={n_context}: fast is {plain['median_s'] / fast['median_s']:.2f}x faster, "
            f"peak RSS {100 * fast['peak_rss_mb'] / plain['peak_rss_mb']:.0f}% of plain "
            f"(forward-only {100 * fast['forward_peak_mb'] / plain['forward_peak_mb']:.0f}%)"
        )
    contiguous = results[-1]
    same = next(
        r for r in results if r["form"] == "fast" and r["n_context"] == contiguous["n_context"]
    )
    print(
        f"L={contiguous['n_context']}: channels_last fast path "
        f"{contiguous['median_s'] / same['median_s']:.2f}x faster than contiguous"
    )
    if args.output:
        machine = {
            "cpu": platform.processor() or platform.machine(),
            "threads": args.threads,
            "torch": torch.__version__,
            "python": platform.python_version(),
        }
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps({"machine": machine, "results": results}, indent=1))


if __name__ == "__main__":
    main()
