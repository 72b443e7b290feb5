"""Running the model on stacks of slices, with context bootstrapping (paper §3.5, SPEC §5).

With ``ensemble = 1`` the context is used as given, in one pass. With ``ensemble = K > 1`` each of
K passes draws L pairs with replacement from the context and applies one small random in-plane
affine to the target input, inverted on the output; the passes' clamped outputs are averaged and
their standard deviation is the uncertainty. Randomness comes only from a ``torch.Generator``.

The model's fast path (chosen under ``torch.inference_mode()``) already processes the context
stream in memory-bounded chunks, so a large L costs time, not memory per member.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from neuralizer.model.network import Neuralizer
from neuralizer.model.output import clamp_output


@dataclass(frozen=True)
class EnsembleConfig:
    """Size of the small random affine of each bootstrap pass (degrees, fraction, fraction)."""

    passes: int = 1
    rotation_deg: float = 5.0
    scaling: float = 0.05
    translation: float = 0.03  # of the image size (normalised coordinates span 2)

    def __post_init__(self) -> None:
        if not isinstance(self.passes, int) or self.passes < 1:
            raise ValueError(f"ensemble must be a positive integer, got {self.passes!r}")


def random_affine(config: EnsembleConfig, generator: torch.Generator) -> Tensor:
    """A 3×3 homogeneous affine in normalised image coordinates (rotation, scaling, shift)."""
    u = torch.rand(4, generator=generator, dtype=torch.float64) * 2 - 1
    angle = math.radians(config.rotation_deg) * float(u[0])
    scale = 1.0 + config.scaling * float(u[1])
    shift = 2.0 * config.translation * u[2:]
    c, s = math.cos(angle) * scale, math.sin(angle) * scale
    return torch.tensor(
        [[c, -s, float(shift[0])], [s, c, float(shift[1])], [0.0, 0.0, 1.0]], dtype=torch.float64
    )


def warp(images: Tensor, matrix: Tensor) -> Tensor:
    """Sample N×C×H×W ``images`` at ``matrix`` @ (output point), bilinear, zero outside."""
    theta = matrix[:2].to(images.dtype).expand(images.shape[0], 2, 3)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def pad_to_multiple(images: Tensor, multiple: int) -> tuple[Tensor, tuple[int, int]]:
    """Zero-pad the last two dims of ``images`` up to multiples of ``multiple``; returns (H, W)."""
    height, width = images.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if pad_h or pad_w:
        flat = images.reshape(-1, *images.shape[-3:])
        flat = F.pad(flat, (0, pad_w, 0, pad_h))
        images = flat.reshape(*images.shape[:-2], height + pad_h, width + pad_w)
    return images, (height, width)


def _forward_batches(
    model: Neuralizer,
    target_in: Tensor,
    context_in: Tensor,
    context_out: Tensor,
    batch_size: int,
    step: Callable[[int], None] | None,
    max_memory: float | None = None,
    counts: Tensor | None = None,
) -> Tensor:
    """Model output (clamped) for N target slices, each with its own L context pairs.

    ``target_in`` N×Cin×H×W, ``context_in`` N×L×Cin×H×W, ``context_out`` N×L×Cout×H×W;
    ``max_memory`` (bytes) is the model's limit per pass (None: the memory available now);
    ``counts``: each pair's multiplicity (see ``Neuralizer.forward``).
    """
    device = next(model.parameters()).device
    target_in, (height, width) = pad_to_multiple(target_in, model.config.size_multiple)
    context_in, _ = pad_to_multiple(context_in, model.config.size_multiple)
    context_out, _ = pad_to_multiple(context_out, model.config.size_multiple)
    outputs = []
    for start in range(0, target_in.shape[0], batch_size):
        part = slice(start, start + batch_size)
        raw = model(
            target_in[part].to(device),
            context_in[part].to(device),
            context_out[part].to(device),
            max_memory=max_memory,
            counts=counts,
        )
        outputs.append(clamp_output(raw).float().cpu())
        if step is not None:
            step(raw.shape[0])
    return torch.cat(outputs)[..., :height, :width]


def run_ensemble(
    model: Neuralizer,
    target_in: Tensor,
    context_in: Tensor,
    context_out: Tensor,
    *,
    config: EnsembleConfig,
    generator: torch.Generator,
    batch_size: int = 8,
    step: Callable[[int], None] | None = None,
    max_memory: float | None = None,
) -> tuple[Tensor, Tensor | None]:
    """Mean prediction (N×Cout×H×W, in [0, 1]) and its s.d. across passes (None for one pass).

    ``target_in`` N×Cin×H×W; ``context_in`` N×L×Cin×H×W; ``context_out`` N×L×Cout×H×W: slice n
    of the target is predicted from its own L context pairs (for volumes, the same slice of every
    context volume). In every pass all N slices share one bootstrap draw and one affine.
    ``max_memory``: bytes one forward pass may use (a ``MemoryLimitError`` beyond it).
    """
    n_context = context_in.shape[1]
    if n_context < 1:
        raise ValueError("the context is empty: give at least one input/output pair")
    # Welford's running mean and sum of squared deviations: E[x²] − mean² would cancel
    # catastrophically where the passes agree (an s.d. of 0 read as up to 3e-4)
    mean = torch.zeros(target_in.shape[0], context_out.shape[2], *target_in.shape[-2:])
    squares = torch.zeros_like(mean) if config.passes > 1 else None
    with torch.inference_mode():
        for k in range(1, config.passes + 1):
            c_in, c_out, x = context_in, context_out, target_in
            matrix = counts = None
            if config.passes > 1:
                pick = torch.randint(n_context, (n_context,), generator=generator)
                # A draw with replacement repeats pairs: each distinct pair runs once, counted
                # as often as it was drawn (the same function, about 1 - 1/e = 63 % of the work).
                drawn, counts = torch.unique(pick, return_counts=True)
                c_in, c_out = context_in[:, drawn], context_out[:, drawn]
                matrix = random_affine(config, generator)
                x = warp(target_in, matrix)
            out = _forward_batches(model, x, c_in, c_out, batch_size, step, max_memory, counts)
            if matrix is not None:
                out = warp(out, torch.linalg.inv(matrix))
            delta = out - mean
            mean += delta / k
            if squares is not None:
                squares += delta * (out - mean)
    if squares is None:
        return mean, None
    return mean, (squares / config.passes).clamp_min(0.0).sqrt()
