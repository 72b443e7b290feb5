"""Whole-volume prediction time and peak memory (issue 7, docs/performance.md).

One embedded test subject (2 mm MNI grid, 96×112×96, skull-stripped T1) is the target; L = 8 other
test subjects are the context (a binary hippocampus+thalamus mask as the output). Each measurement
runs in its own subprocess, so its peak resident memory is its own:

- ``predict-e1`` / ``predict-e8``: ``predict_volume`` with ensemble 1 and 8, context already on the
  target's grid (``align="none"``), model loaded beforehand (load time reported separately);
- ``predict-all-e1``: the same with ``axis="all"`` (coronal, axial and sagittal slices, averaged);
- ``predict-e1-adapt``: ``predict-e1`` with ``adapt=K`` (``--adapt K``, default: the default K),
  adapting a copy of the model to the 8 pairs first; its ``adapt_seconds`` are the adaptation's
  share (issue 29: at most 2 minutes beyond ``predict-e1``);

``cpu_seconds`` (every thread of the process) stand beside the wall seconds: on a machine shared
with other jobs, the wall time measures the others as much as the prediction, while one thread's
CPU seconds are the wall time it would take on an idle core.
- ``predict-affine-e1``: ``predict-e1`` with ``align="affine"``, the registrations included (at
  this checkout: the target and the 8 examples each registered once to MNI152; at commits before
  issue 32: the 8 examples registered to the target), for issue 32's "same cost or less";
- ``align``: the registrations of ``align="affine"`` alone (the target and the 8 examples to
  MNI152, :func:`neuralizer.infer.align.mni_transforms`, side by side on ``--threads``).

    python benchmarks/bench_predict.py --output benchmarks/results/bench_predict.json

Uses the shipped model; ``--model PATH`` for another checkpoint, ``--untrained`` for a random
c = 32 network of the shipped architecture (timing only: the numbers do not depend on the weights).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

try:
    from neuralizer.infer.plan import DEFAULT_ADAPT_STEPS
except ImportError:  # an older tree timed by bench_versions.py (no adaptation there)
    DEFAULT_ADAPT_STEPS = 0

N_CONTEXT = 8
KINDS = ("predict-e1", "predict-e8", "predict-all-e1", "predict-affine-e1", "align",
         "predict-e1-adapt")  # fmt: skip
STRUCTURES = (10, 49, 17, 53)  # thalamus and hippocampus, both sides


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _data():
    import nibabel as nib

    from neuralizer.data.subjects import SynthConfig, SynthSliceSource

    source = SynthSliceSource("test", N_CONTEXT + 1, SynthConfig(voxel_size_mm=2.0))

    def image(i, key, fn=lambda a: a):
        return nib.Nifti1Image(fn(np.asarray(source.volumes(i)[0][key])), source.grid.affine)

    target = image(0, "images__t1_brain", lambda a: a.astype(np.float32))
    c_in = [image(i, "images__t1_brain", lambda a: a.astype(np.float32)) for i in range(1, 9)]
    c_out = [
        image(i, "labels__desikan_killiany", lambda a: np.isin(a, STRUCTURES).astype(np.uint8))
        for i in range(1, 9)
    ]
    return target, c_in, c_out


def _model(args: argparse.Namespace):
    import torch

    from neuralizer.model import ModelConfig, Neuralizer, load

    if args.untrained:
        torch.manual_seed(0)
        model = Neuralizer(ModelConfig(channels=32)).eval()
        model.provenance = {"voxel_size_mm": 2.0, "image_size": [96, 96]}
        return model
    return load(args.model)


def worker(kind: str, args: argparse.Namespace) -> dict:
    import torch

    from neuralizer.infer import predict_volume

    if args.threads:
        torch.set_num_threads(args.threads)
    target, c_in, c_out = _data()
    start = time.perf_counter()
    model = _model(args)
    load_s = time.perf_counter() - start
    extra = {}
    if kind == "align":
        from neuralizer.infer.align import mni_transforms
        from neuralizer.infer.checks import as_loaded

        scans = [as_loaded(target, "target"), *(as_loaded(c, "in") for c in c_in)]
        start = time.perf_counter()
        mni_transforms(scans)
        seconds = time.perf_counter() - start
    else:
        axis = "all" if kind.startswith("predict-all") else "coronal"
        ensemble = int(kind.split("-e", 1)[1].split("-")[0])
        adapt = args.adapt if kind.endswith("-adapt") else 0
        start, cpu_start = time.perf_counter(), time.process_time()
        align = "affine" if kind.startswith("predict-affine") else "none"
        options = {"adapt": adapt} if adapt else {}  # older trees have no adaptation
        result = predict_volume(target, c_in, c_out, model=model, ensemble=ensemble, align=align,
                                axis=axis, **options)  # fmt: skip
        seconds = time.perf_counter() - start
        extra["cpu_seconds"] = round(time.process_time() - cpu_start, 2)
        if adapt:
            extra.update(adapt_steps=adapt, adapt_seconds=round(result.adapt_seconds, 2))
    return {
        "kind": kind,
        "seconds": round(seconds, 2),
        "model_load_seconds": round(load_s, 2),
        "peak_rss_mb": round(_rss_mb(), 1),
        "threads": torch.get_num_threads(),
        "n_context": N_CONTEXT,
        "volume": list(target.shape),
        **extra,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, help="write the results as JSON here")
    parser.add_argument("--model", help="checkpoint (default: the shipped model)")
    parser.add_argument("--untrained", action="store_true", help="random c=32 weights")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--only", choices=KINDS, nargs="+", help="these measurements only")
    parser.add_argument("--adapt", type=int, default=DEFAULT_ADAPT_STEPS,
                        help="K of predict-e1-adapt (default: the default K)")  # fmt: skip
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args)))
        return
    results = []
    for kind in args.only or KINDS:
        command = [sys.executable, __file__, "--worker", kind, "--adapt", str(args.adapt)]
        command += ["--untrained"] if args.untrained else []
        command += ["--model", args.model] if args.model else []
        command += ["--threads", str(args.threads)] if args.threads else []
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
        print(results[-1])
    report = {"machine": platform.platform(), "python": platform.python_version(),
              "results": results}  # fmt: skip
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
