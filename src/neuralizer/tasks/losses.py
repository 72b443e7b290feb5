"""Losses and metrics (paper §3.2, §4.4; SPEC §1–2, §7). Pure functions on torch tensors.

Shapes: predictions and targets are B×C×H×W (C = 1 here); per-episode results are length-B.

Output-range convention. The model has no output activation (SPEC §1). Before any loss the raw
prediction goes through ``clamp_output`` (``neuralizer.model.output``), which clamps to [0, 1] in
the forward pass and has a one-sided straight-through gradient; metrics clamp as well (Dice
thresholds the clamped output at 0.5, PSNR compares the clamped output). Training and prediction
use this same function.
"""

from __future__ import annotations

import torch

from neuralizer.model.output import clamp_output

#: σ² of the MSE term: loss = mean((y - ŷ)²) / (2σ²) = 10 × MSE (paper §4.3)
SIGMA2 = 0.05


def soft_dice_loss(pred: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """Soft Dice loss per episode: ``1 - (2 Σ p t + s) / (Σ p + Σ t + s)`` over C×H×W.

    ``pred`` B×C×H×W in [0, 1] (already clamped), ``target`` B×C×H×W in {0, 1}; ``smooth`` s = 1
    makes an empty target predicted empty a loss of 0. Returns B.
    """
    dims = tuple(range(1, pred.ndim))
    inter = (pred * target).sum(dims)
    total = pred.sum(dims) + target.sum(dims)
    return 1.0 - (2.0 * inter + smooth) / (total + smooth)


def mse_loss(pred: torch.Tensor, target: torch.Tensor, sigma2: float = SIGMA2) -> torch.Tensor:
    """Pixel-wise mean squared error over C×H×W divided by 2σ² (σ² = 0.05: 10 × MSE). Returns B."""
    dims = tuple(range(1, pred.ndim))
    return ((pred - target) ** 2).mean(dims) / (2.0 * sigma2)


def episode_losses(
    raw_pred: torch.Tensor, target: torch.Tensor, segmentation_like: torch.Tensor
) -> torch.Tensor:
    """Loss of each episode: soft Dice where ``segmentation_like`` (B bool), else MSE/(2σ²).

    ``raw_pred`` is the model output (B×1×H×W, no activation); it is passed through
    :func:`clamp_output` here. Returns B.
    """
    pred = clamp_output(raw_pred)
    seg = segmentation_like.to(device=pred.device, dtype=torch.bool)
    return torch.where(seg, soft_dice_loss(pred, target), mse_loss(pred, target))


def batch_loss(
    raw_pred: torch.Tensor, target: torch.Tensor, segmentation_like: torch.Tensor
) -> torch.Tensor:
    """Mean over the batch of :func:`episode_losses` (a scalar)."""
    return episode_losses(raw_pred, target, segmentation_like).mean()


@torch.no_grad()
def dice_score(pred: torch.Tensor, target: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Dice of ``pred >= threshold`` against ``target >= threshold`` per episode (B×C×H×W -> B).

    Two empty masks score 1 (perfect agreement); one empty and one not score 0.
    """
    p = pred >= threshold
    t = target >= threshold
    dims = tuple(range(1, pred.ndim))
    inter = (p & t).sum(dims).double()
    total = p.sum(dims).double() + t.sum(dims).double()
    return torch.where(total > 0, 2.0 * inter / total.clamp_min(1), torch.ones_like(total))


@torch.no_grad()
def psnr(pred: torch.Tensor, target: torch.Tensor, max_value: float = 1.0) -> torch.Tensor:
    """PSNR in dB per episode (B×C×H×W -> B) of ``pred`` clamped to [0, max_value].

    ``10 log10(max_value² / MSE)``; identical images give ``inf``.
    """
    dims = tuple(range(1, pred.ndim))
    mse = ((pred.clamp(0.0, max_value) - target).double() ** 2).mean(dims)
    return 10.0 * torch.log10(max_value**2 / mse)
