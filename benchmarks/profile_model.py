"""Where the forward pass's time goes, per operator type (issue 31, docs/performance.md).

Profiles the fast path (and optionally the plain form) at the paper's configuration (c = 64,
192², B = 1) with ``torch.profiler`` and groups the operators' own CPU time into convolutions
and the memory-bound rest: elementwise (GELU, additions, scaling), copies, pooling and
upsampling, concatenation, the rest. The floor a convolution-only pass would reach is the
convolutions' share of the time.

    python benchmarks/profile_model.py --output benchmarks/results/profile_model.json
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from neuralizer.model import ModelConfig, Neuralizer

GROUPS = {
    "convolution": ("aten::mkldnn_convolution", "mkldnn::_convolution_pointwise"),
    "elementwise": (
        "aten::gelu_",
        "aten::gelu",
        "aten::add_",
        "aten::add",
        "aten::div_",
        "aten::mul",
        "aten::fill_",
        "aten::zero_",
    ),  # fmt: skip
    "copies": ("aten::copy_", "aten::clone"),
    "pooling and upsampling": ("aten::max_pool2d_with_indices", "aten::upsample_bilinear2d"),
    "concatenation": ("aten::cat",),
    "reductions": ("aten::sum", "aten::mean", "aten::aminmax"),
}


def profile_pass(form: str, n_context: int, size: int, channels: int, runs: int) -> dict:
    torch.manual_seed(0)
    model = Neuralizer(ModelConfig(channels=channels)).eval()
    g = torch.Generator().manual_seed(0)
    inputs = (
        torch.rand(1, 3, size, size, generator=g),
        torch.rand(1, n_context, 3, size, size, generator=g),
        torch.rand(1, n_context, 1, size, size, generator=g),
    )
    with torch.inference_mode():
        model(*inputs, fast=form == "fast")  # warm-up
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(runs):
                model(*inputs, fast=form == "fast")
    own = {e.key: e.self_cpu_time_total / 1e6 / runs for e in prof.key_averages()}
    total = sum(own.values())
    shares = {group: sum(own.get(op, 0.0) for op in ops) for group, ops in GROUPS.items()}
    shares["other"] = total - sum(shares.values())
    top = sorted(own.items(), key=lambda kv: -kv[1])[:12]
    return {
        "form": form,
        "n_context": n_context,
        "cpu_seconds_per_pass": total,
        "shares": {k: v / total for k, v in shares.items()},
        "top_operators_s": dict(top),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-context", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--forms", nargs="+", default=["fast"], choices=["fast", "plain"])
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = []
    for n_context in args.n_context:
        for form in args.forms:
            result = profile_pass(form, n_context, args.size, args.channels, args.runs)
            results.append(result)
            shares = ", ".join(f"{k} {100 * v:.0f}%" for k, v in result["shares"].items())
            print(f"L = {n_context} {form}: {result['cpu_seconds_per_pass']:.2f} CPU s: {shares}")
    if args.output:
        report = {"machine": platform.platform(), "threads": args.threads, "results": results}
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
