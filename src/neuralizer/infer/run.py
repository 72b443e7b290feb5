"""The prediction runner on files, shared by ``neuralizer predict`` (one target or a folder) and
the web app: read a target, check it against the context once (:func:`plan_prediction`), load
the model only then, predict, and write the results atomically.

Importing this module does not import torch: bad input fails within a second.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from neuralizer.infer.io import Loaded, check_output_path, read_input, suffix, write_output
from neuralizer.infer.paths import check_outputs, input_files
from neuralizer.infer.plan import (
    Context,
    PredictOptions,
    PredictPlan,
    load_context,
    plan_prediction,
)

__all__ = [
    "Context",
    "OutputFiles",
    "PredictOptions",
    "load_context",
    "predict_plan",
    "run_one",
    "write_result",
]


@dataclass(frozen=True)
class OutputFiles:
    """Where one target's results go: the prediction, and optionally the s.d. across ensemble
    passes, the segmentation probabilities and a QC picture (PNG)."""

    prediction: Path
    uncertainty: Path | None = None
    probabilities: Path | None = None
    qc: Path | None = None

    def check(self, inputs: Iterable[Path] = ()) -> None:
        """ValueError for an output that cannot be written (a format we do not write, a name
        too long, a folder that is a file), that is one of the ``inputs`` files or another
        output; before any work."""
        for path in (self.prediction, self.uncertainty, self.probabilities):
            if path is not None:
                check_output_path(path)
        if self.qc is not None and suffix(self.qc) != ".png":
            raise ValueError(f"--qc writes a PNG picture: {self.qc} should end in .png")
        named = {"the output": self.prediction, "--uncertainty": self.uncertainty,
                 "--probabilities": self.probabilities, "--qc": self.qc}  # fmt: skip
        check_outputs(named, inputs)


def predict_plan(plan: PredictPlan, model, *, progress: bool = False):
    """The :class:`~neuralizer.infer.engine.PredictResult` of a checked ``plan``; ``model`` a
    :class:`Neuralizer`, a checkpoint path or None (the shipped model), loaded only now."""
    from neuralizer.infer.engine import resolve_model

    net = resolve_model(model, plan.options.device)
    if plan.volumetric:
        from neuralizer.infer.volume import predict_plan_volume

        return predict_plan_volume(plan, net, progress=progress)
    from neuralizer.infer.api import predict_plan_2d

    return predict_plan_2d(plan, net, progress=progress)


def write_result(result, target: Loaded, files: OutputFiles) -> None:
    """The optional uncertainty/probabilities/QC files, then the prediction, each atomically
    (the prediction last: folder mode takes an existing prediction for a finished target)."""
    for key in ("uncertainty", "probabilities"):
        path, data = getattr(files, key), getattr(result, key)
        if path is not None and data is not None:
            write_output(path, data)
        elif path is not None:
            print(f"note: a {result.task} task has no {key}; {path} not written", file=sys.stderr)
    if files.qc is not None:
        from neuralizer.infer.qc import save_qc

        save_qc(files.qc, target, result)
    write_output(files.prediction, result.prediction)


def context_files(target: Loaded, context: Context) -> list[Path]:
    """The files ``target`` and ``context`` were read from (which no output may overwrite)."""
    loaded = [target, *context.context_in, *context.context_out]
    return [path for item in loaded for path in item.files]


def run_one(
    target: Loaded | str | Path,
    context: Context,
    options: PredictOptions,
    files: OutputFiles,
    model,
    *,
    progress: bool = False,
):
    """Read ``target`` (unless loaded already), check it, predict it with ``model`` and write
    ``files``; returns the loaded target and the :class:`~neuralizer.infer.engine.PredictResult`."""
    if not isinstance(target, Loaded):  # before the target is decoded
        from neuralizer.infer.resources import check_files

        files.check(input_files(target))
        check_files(target, context.context_in, context.context_out, model, options)
    loaded = target if isinstance(target, Loaded) else read_input(target)
    files.check(context_files(loaded, context))
    for path in (files.prediction, files.uncertainty, files.probabilities):
        if loaded.image is not None and path is not None and suffix(path) == ".png":
            raise ValueError(f"{path}: the result of a volume cannot be a PNG; use .nii.gz")
    plan = plan_prediction(loaded, context, options)
    result = predict_plan(plan, model, progress=progress)
    write_result(result, loaded, files)
    return loaded, result
