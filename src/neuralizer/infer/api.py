"""``neuralizer.predict``: a 2D image and a few example pairs in, the result on its grid out.

Every check of the user's data runs before the model is loaded. Preprocessing happens inside the
call and is undone on the way out: per-channel percentile rescale to [0, 1], resampling from the
image's pixel size (``spacing``, 1 mm if not given) to the model's voxel size, zero padding to the
model's size multiple; the result comes back at the input's H×W.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neuralizer.infer.adapt import adapt_model, adaptation_steps, plan_adaptation
from neuralizer.infer.engine import (
    PredictResult,
    _resize,
    model_geometry,
    predict_maps,
    rescale_channels,
    resolve_model,
)
from neuralizer.infer.plan import PredictOptions, PredictPlan, plan_arrays, plan_given
from neuralizer.infer.resources import check_prediction
from neuralizer.model.network import Neuralizer


def predict(
    target_in: Any,
    context_in: Sequence[Any] | None = None,
    context_out: Sequence[Any] | None = None,
    *,
    model: Neuralizer | str | Path | None = None,
    task: str = "auto",
    labels: Sequence[int] | str | None = None,
    ensemble: int = 1,
    spacing: float | None = None,
    seed: int = 0,
    device: str = "auto",
    max_memory: float | str | None = None,
    adapt: int = 0,
    progress: bool = False,
) -> PredictResult:
    """Predict a 2D result for ``target_in`` from example pairs.

    Args:
        target_in: H×W or C×H×W (C ≤ 3) array or tensor, any intensity range; or a 2D
            :class:`~neuralizer.infer.plan.PredictPlan` (checked already: the context and every
            option but ``model`` come from it).
        context_in: L inputs, each shaped like ``target_in`` (an L×… array works too).
        context_out: L outputs, each H×W (or 1×H×W): binary masks, label maps or images.
        model: a :class:`Neuralizer`, a checkpoint path, or None for the shipped model.
        task: "auto" (binary outputs mean segmentation), "segmentation" or "image".
        labels: label values to segment one-vs-rest from label-map outputs, or "all".
        ensemble: K passes of context bootstrapping with small affines (1: the context as is).
        spacing: pixel size in mm (isotropic in-plane); 1 mm if None.
        seed: seeds the ensemble's draws (same seed, same result).
        device: "auto", "cpu" or "cuda".
        max_memory: bytes (or "8G", "inf") one forward pass may use; None: the memory available
            now. Beyond it: ``MemoryLimitError`` (a ValueError) with the estimate.
        adapt: K > 0 fine-tunes a copy of the model for K steps on the example pairs first
            (:mod:`neuralizer.infer.adapt`; the given model is not modified); it needs 2 pairs
            or more (with one, the prediction runs without it and its steps say so).
        progress: show a progress bar of the adaptation.

    Returns:
        :class:`PredictResult` with H×W ``prediction`` (and ``uncertainty`` when ensemble > 1).
    """
    options = dict(task=task, labels=labels, ensemble=ensemble, spacing=spacing, seed=seed,
                   device=device, max_memory=max_memory, adapt=adapt)  # fmt: skip
    plan = plan_given(target_in, context_in, context_out, options, plan_arrays)
    if plan.volumetric:
        raise ValueError("this plan is of volumes: call neuralizer.predict_volume with it")
    return predict_plan_2d(plan, resolve_model(model, plan.options.device), progress=progress)


def predict_plan_2d(plan: PredictPlan, net: Neuralizer, *, progress: bool = False) -> PredictResult:
    """The prediction of a checked 2D ``plan`` with the ready model ``net``."""
    options: PredictOptions = plan.options
    target = plan.target.data
    c_in = [c.data for c in plan.context_in]
    c_out = np.stack([c.data for c in plan.context_out])
    geometry = model_geometry(net)
    voxel_size_mm, percentiles = geometry.voxel_size_mm, geometry.percentiles
    spacing_mm = 1.0 if options.spacing is None else float(options.spacing)
    height, width = target.shape[1:]
    scale = spacing_mm / voxel_size_mm
    work = (max(1, round(height * scale)), max(1, round(width * scale)))
    check_prediction(plan, net)  # the resource plan, before any working array exists
    adapt_config = plan_adaptation(net, options, len(c_in), work)
    x = torch.from_numpy(rescale_channels(target, percentiles))[None]
    contexts = torch.from_numpy(np.stack([rescale_channels(c, percentiles) for c in c_in]))[None]
    outputs = plan.outputs
    adapted = None
    if adapt_config is not None:
        pairs_in = _resize(contexts, work).numpy()
        maps = [_resize(torch.from_numpy(m), work)[None].numpy() for m in outputs.targets(c_out)]
        discrete = outputs.kind != "image"
        if discrete:
            maps = [(m >= 0.5).astype(np.float32) for m in maps]
        adapted = adapt_model(net, pairs_in, maps, discrete, adapt_config, progress=progress)
        net = adapted.model
    maps, spread = predict_maps(
        net, outputs, x, contexts, c_out[None], ensemble=options.ensemble, seed=options.seed,
        resize_to=work,
    )  # fmt: skip
    result, uncertainty, probabilities = outputs.finish(
        maps[:, 0], None if spread is None else spread[:, 0]
    )
    steps = (
        "rescaled inputs to [0, 1] (percentiles 0.5/99.5 per channel)",
        f"resampled {height}×{width} at {spacing_mm:g} mm to {work[0]}×{work[1]} at "
        f"{voxel_size_mm:g} mm and back",
        *adaptation_steps(options, len(c_in), adapted),
        f"{outputs.kind}: {len(c_in)} context pairs, ensemble {options.ensemble}",
    )
    return PredictResult(
        result, uncertainty, probabilities, outputs.kind, outputs.label_values, steps,
        adapt_seconds=None if adapted is None else adapted.seconds,
    )  # fmt: skip
