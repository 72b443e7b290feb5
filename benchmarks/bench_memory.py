"""Peak memory of one forward pass against the up-front estimate (neuralizer.model.limits).

Each case runs in a fresh process (peak resident memory, VmHWM, reset before the pass), one
thread. Prints one JSON line per case: path, B, L, H=W, c, measured and estimated bytes.

    python benchmarks/bench_memory.py                 # the table of docs/reliability.md
    python benchmarks/bench_memory.py fast:1:64:192:64 grad:1:8:64:16   # chosen cases
"""

from __future__ import annotations

import json
import subprocess
import sys

CASES = [
    "fast:1:1:192:64",
    "fast:1:8:192:64",
    "fast:1:16:192:64",
    "fast:1:32:192:64",
    "fast:1:64:192:64",
    "plain:1:8:192:64",
    "plain:1:16:192:64",
    "grad:1:8:96:64",
    "grad:1:16:96:64",
]

_CHILD = """
import json, sys, torch
from neuralizer.model import ModelConfig, Neuralizer
from neuralizer.model.limits import estimate_forward_bytes
path, batch, n_context, side, channels = sys.argv[1], *map(int, sys.argv[2:6])
torch.set_num_threads(1)
model = Neuralizer(ModelConfig(channels=channels))
g = torch.Generator().manual_seed(0)
inputs = (
    torch.rand(batch, 3, side, side, generator=g),
    torch.rand(batch, n_context, 3, side, side, generator=g),
    torch.rand(batch, n_context, 1, side, side, generator=g),
)
with torch.no_grad():  # load the libraries and their workspaces first
    model(*(t[..., :16, :16].contiguous() for t in inputs))

def status(key):
    with open("/proc/self/status") as file:
        return next(int(l.split()[1]) * 1024 for l in file if l.startswith(key))

with open("/proc/self/clear_refs", "w") as file:
    file.write("5")  # reset the peak (VmHWM) to the current resident size
base = status("VmRSS:")
if path == "grad":
    model(*inputs).sum().backward()
else:
    with torch.no_grad():
        model(*inputs, fast=path == "fast")
measured = status("VmHWM:") - base
estimate = estimate_forward_bytes(channels, 3, 1, batch, n_context, side, side, path=path)
print(json.dumps({"path": path, "B": batch, "L": n_context, "H=W": side, "c": channels,
                  "measured_MiB": round(measured / 2**20, 1),
                  "estimate_MiB": round(estimate / 2**20, 1),
                  "ratio": round(estimate / measured, 2)}))
"""


def measure(case: str) -> dict:
    """One case "path:B:L:side:channels" in a fresh process."""
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, *case.split(":")],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    for case in sys.argv[1:] or CASES:
        print(json.dumps(measure(case)), flush=True)
