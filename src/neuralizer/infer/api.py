"""``neuralizer.predict``: a 2D image and a few example pairs in, the result on its grid out.

Every check of the user's data runs before the model is loaded. Preprocessing happens inside the
call and is undone on the way out: per-channel percentile rescale to [0, 1], resampling from the
image's pixel size (``spacing``, 1 mm if not given) to the model's voxel size, zero padding to the
model's size multiple; the result comes back at the input's H×W.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from neuralizer.infer.checks import channels_2d
from neuralizer.infer.ensemble import EnsembleConfig, run_ensemble
from neuralizer.infer.outputs import OutputPlan, intensity_range, is_blank, plan_outputs, rescale
from neuralizer.model.limits import check_memory, estimate_forward_bytes, parse_memory
from neuralizer.model.network import Neuralizer

DEFAULT_VOXEL_SIZE_MM = 2.0
DEFAULT_IMAGE_SIZE = (96, 96)


@dataclass(frozen=True)
class PredictResult:
    """What :func:`predict` and :func:`predict_volume` return.

    - ``prediction``: the result on the target's grid: an H×W array (2D) or a NIfTI image (3D);
      uint8/int16 labels for segmentation, float32 in the context outputs' scale for images.
    - ``uncertainty``: s.d. across ensemble passes, same grid, float32; None when ``ensemble == 1``.
    - ``probabilities``: segmentation probabilities (M×… for several labels), else None.
    - ``task``: "segmentation", "labels" or "image"; ``label_values`` for "labels".
    - ``steps``: what was done, in order (alignment, resampling, ensemble), for logs and reports.
    """

    prediction: Any
    uncertainty: Any | None
    probabilities: Any | None
    task: str
    label_values: tuple[int, ...] = ()
    steps: tuple[str, ...] = field(default_factory=tuple)


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


def model_geometry(model: Neuralizer) -> tuple[float, tuple[int, int]]:
    """(voxel size in mm, H×W field of view in voxels) the model was trained on."""
    provenance = getattr(model, "provenance", None) or {}
    voxel = float(provenance.get("voxel_size_mm", DEFAULT_VOXEL_SIZE_MM))
    size = tuple(int(s) for s in provenance.get("image_size", DEFAULT_IMAGE_SIZE))
    return voxel, size  # type: ignore[return-value]


def check_prediction_memory(
    model: Neuralizer, batch: int, n_context: int, size: tuple[int, int], max_memory: float | None
) -> None:
    """Refuse up front (MemoryLimitError) a prediction whose forward passes would exceed
    ``max_memory`` bytes: ``batch`` slices of ``size`` H×W with ``n_context`` pairs each.

    The model checks every pass again; this check comes before resampling and alignment.
    """
    multiple = model.config.size_multiple
    height, width = (-(-s // multiple) * multiple for s in size)
    config = model.config
    estimate = estimate_forward_bytes(
        config.channels, config.in_channels, config.out_channels, batch, n_context, height,
        width, path="fast",
    )  # fmt: skip
    what = f"prediction ({batch} slice(s) of {height}×{width} with {n_context} context pairs)"
    check_memory(estimate, max_memory, what)


def rescale_channels(image: np.ndarray) -> np.ndarray:
    """Each channel of C×… percentile-rescaled to [0, 1] (blank channels become 0)."""
    out = np.zeros(image.shape, np.float32)
    for k, channel in enumerate(image):
        if not is_blank(channel):
            out[k] = rescale(channel, *intensity_range(channel))
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
    max_memory: float | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Model maps M×N×H×W in [0, 1] and their s.d. (or None), one map per ``plan`` target.

    ``target_in`` N×C×H×W and ``context_in`` N×L×C×H×W are rescaled model-ready inputs;
    ``context_out`` is N×L×1×H×W in the user's values. ``resize_to`` (h, w) runs the model at
    another size (bilinear) and brings the maps back. ``max_memory``: bytes per forward pass.
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
            generator=generator, batch_size=batch_size, step=step, max_memory=max_memory,
        )  # fmt: skip
        maps.append(_resize(mean[:, 0], size).numpy())
        spreads.append(None if spread is None else _resize(spread[:, 0], size).numpy())
    spread_out = None if spreads[0] is None else np.stack(spreads)
    return np.stack(maps), spread_out


def predict(
    target_in: Any,
    context_in: Sequence[Any],
    context_out: Sequence[Any],
    *,
    model: Neuralizer | str | Path | None = None,
    task: str = "auto",
    labels: Sequence[int] | str | None = None,
    ensemble: int = 1,
    spacing: float | None = None,
    seed: int = 0,
    device: str = "auto",
    max_memory: float | str | None = None,
) -> PredictResult:
    """Predict a 2D result for ``target_in`` from example pairs.

    Args:
        target_in: H×W or C×H×W (C ≤ 3) array or tensor, any intensity range.
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

    Returns:
        :class:`PredictResult` with H×W ``prediction`` (and ``uncertainty`` when ensemble > 1).
    """
    target, c_in, c_out = channels_2d(target_in, context_in, context_out)
    plan = plan_outputs(task, labels, list(c_out))
    limit = parse_memory(max_memory)
    EnsembleConfig(passes=ensemble)
    if spacing is not None and not spacing > 0:
        raise ValueError(f"spacing must be a positive number of mm, got {spacing}")
    net = resolve_model(model, device)
    voxel_size_mm, _ = model_geometry(net)
    spacing_mm = 1.0 if spacing is None else float(spacing)
    height, width = target.shape[1:]
    scale = spacing_mm / voxel_size_mm
    work = (max(1, round(height * scale)), max(1, round(width * scale)))
    check_prediction_memory(net, 1, len(c_in), work, limit)
    x = torch.from_numpy(rescale_channels(target))[None]
    contexts = torch.from_numpy(np.stack([rescale_channels(c) for c in c_in]))[None]
    maps, spread = predict_maps(
        net, plan, x, contexts, c_out[None], ensemble=ensemble, seed=seed, resize_to=work,
        max_memory=limit,
    )  # fmt: skip
    result, uncertainty, probabilities = plan.finish(
        maps[:, 0], None if spread is None else spread[:, 0]
    )
    steps = (
        "rescaled inputs to [0, 1] (percentiles 0.5/99.5 per channel)",
        f"resampled {height}×{width} at {spacing_mm:g} mm to {work[0]}×{work[1]} at "
        f"{voxel_size_mm:g} mm and back",
        f"{plan.kind}: {len(c_in)} context pairs, ensemble {ensemble}",
    )
    return PredictResult(result, uncertainty, probabilities, plan.kind, plan.label_values, steps)
