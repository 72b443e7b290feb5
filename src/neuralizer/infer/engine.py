"""The prediction engine shared by :func:`neuralizer.predict` (2D) and
:func:`neuralizer.predict_volume` (3D): the model, its geometry and memory limit, model-ready
inputs, and the maps of every output the plan asks for.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from neuralizer.data.space import PERCENTILES, percentile_rescale
from neuralizer.infer.ensemble import EnsembleConfig, run_ensemble
from neuralizer.infer.outputs import OutputPlan, is_blank
from neuralizer.model.metadata import Geometry
from neuralizer.model.network import Neuralizer


@dataclass(frozen=True)
class PredictResult:
    """What :func:`predict` and :func:`predict_volume` return.

    - ``prediction``: the result on the target's grid: an H×W array (2D) or a NIfTI image (3D);
      uint8/int16 labels for segmentation, float32 in the context outputs' scale for images.
    - ``uncertainty``: s.d. across ensemble passes, same grid, float32; None when ``ensemble == 1``.
    - ``probabilities``: segmentation probabilities (M×… for several labels), else None.
    - ``task``: "segmentation", "labels" or "image"; ``label_values`` for "labels".
    - ``steps``: what was done, in order (alignment, resampling, ensemble), for logs and reports.
    - ``adapt_seconds``: how long adapting to the examples took (None: not adapted).
    - ``alignment``: the target's :class:`~neuralizer.data.mni.MniTransform` (MNI world to the
      target's world) with ``align="affine"``; None otherwise.
    """

    prediction: Any
    uncertainty: Any | None
    probabilities: Any | None
    task: str
    label_values: tuple[int, ...] = ()
    steps: tuple[str, ...] = field(default_factory=tuple)
    adapt_seconds: float | None = None
    alignment: Any | None = None


def resolve_device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device cuda was asked for but no CUDA GPU is available; use cpu")
    if str(device) not in ("cpu",) and not str(device).startswith("cuda"):
        raise ValueError(f"unknown device {device!r}; choose auto, cpu or cuda")
    return torch.device(device)


def resolve_model(model: Neuralizer | str | Path | None, device: str | torch.device) -> Neuralizer:
    """A ready model in eval mode: ``None`` is the shipped model, a path a checkpoint."""
    from neuralizer.model.checkpoint import load

    target = resolve_device(device)
    if isinstance(model, Neuralizer):
        return model.to(target).eval()
    return load(model, device=target)


def model_geometry(model: Neuralizer) -> Geometry:
    """The grid and intensities ``model`` was trained on: as its checkpoint records them (or, for
    older files and models built in memory, inferred from its provenance as before)."""
    recorded = getattr(model, "geometry", None)
    if recorded is not None:
        return recorded
    return Geometry.inferred(getattr(model, "provenance", None))


def rescale_channels(
    image: np.ndarray, percentiles: tuple[float, float] = PERCENTILES
) -> np.ndarray:
    """Each channel of C×… rescaled to [0, 1] between its ``percentiles`` (a model's recorded
    intensity normalisation, :attr:`Geometry.percentiles`); blank channels become 0."""
    out = np.zeros(image.shape, np.float32)
    for k, channel in enumerate(image):
        if not is_blank(channel):
            out[k] = percentile_rescale(channel, percentiles=percentiles)
    return out


def pad_channels(images: torch.Tensor, in_channels: int) -> torch.Tensor:
    """Zero-pad dim -3 (channels) up to ``in_channels`` (SPEC §2: unused channels are zeros)."""
    missing = in_channels - images.shape[-3]
    if missing < 0:
        raise ValueError(
            f"the inputs have {images.shape[-3]} channels; the model takes {in_channels}"
        )
    if missing == 0:
        return images
    zeros = images.new_zeros(*images.shape[:-3], missing, *images.shape[-2:])
    return torch.cat([images, zeros], dim=-3)


def _resize(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of …×H×W to ``size`` (antialiased when shrinking)."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    flat = images.reshape(-1, 1, *images.shape[-2:])
    shrink = size[0] < images.shape[-2] or size[1] < images.shape[-1]
    out = F.interpolate(flat, size=size, mode="bilinear", align_corners=False, antialias=shrink)
    return out.reshape(*images.shape[:-2], *size)


def predict_maps(
    model: Neuralizer,
    plan: OutputPlan,
    target_in: torch.Tensor,
    context_in: torch.Tensor,
    context_out: np.ndarray,
    *,
    ensemble: int,
    seed: int,
    batch_size: int = 8,
    step: Callable[[int], None] | None = None,
    resize_to: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Model maps M×N×H×W in [0, 1] and their s.d. (or None), one map per ``plan`` target.

    ``target_in`` N×C×H×W and ``context_in`` N×L×C×H×W are rescaled model-ready inputs;
    ``context_out`` is N×L×1×H×W in the user's values. ``resize_to`` (h, w) runs the model at
    another size (bilinear) and brings the maps back. The caller has checked the memory of the
    passes (``infer.resources.check_prediction``): the model does not check it again.
    """
    size = tuple(target_in.shape[-2:])
    x = pad_channels(target_in, model.config.in_channels)
    c_in = pad_channels(context_in, model.config.in_channels)
    if resize_to is not None:
        x, c_in = _resize(x, resize_to), _resize(c_in, resize_to)
    generator = torch.Generator().manual_seed(int(seed))
    maps, spreads = [], []
    for context_map in plan.targets(np.moveaxis(context_out, 1, 0)):  # L×N×1×H×W per map
        c_out = torch.from_numpy(np.ascontiguousarray(np.moveaxis(context_map, 0, 1)))
        if resize_to is not None:
            c_out = _resize(c_out, resize_to)
            if plan.kind != "image":
                c_out = (c_out >= 0.5).float()
        mean, spread = run_ensemble(
            model, x, c_in, c_out, config=EnsembleConfig(passes=ensemble),
            generator=generator, batch_size=batch_size, step=step, max_memory=math.inf,
        )  # fmt: skip
        maps.append(_resize(mean[:, 0], size).numpy())
        spreads.append(None if spread is None else _resize(spread[:, 0], size).numpy())
    spread_out = None if spreads[0] is None else np.stack(spreads)
    return np.stack(maps), spread_out
