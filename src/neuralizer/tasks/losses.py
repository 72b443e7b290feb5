"""Losses and metrics (paper §3.2, §4.4; SPEC §1–2, §7). Pure functions on torch tensors.

Shapes: predictions and targets are B×C×H×W (C = 1 here); per-episode results are length-B.

Output-range convention. The model has no output activation (SPEC §1). Before any loss the raw
prediction goes through :func:`clamp_output`, which clamps to [0, 1] in the forward pass and has a
one-sided straight-through gradient; metrics clamp as well (Dice thresholds the clamped output at
0.5, PSNR compares the clamped output). Training and prediction use this same function.
"""

from __future__ import annotations

import torch

#: σ² of the MSE term: loss = mean((y - ŷ)²) / (2σ²) = 10 × MSE (paper §4.3)
SIGMA2 = 0.05


class _ClampOutput(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return x.clamp(0.0, 1.0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        # A descent step moves x by -grad: pass grad unless it would push x further out of range.
        blocked = ((x < 0) & (grad > 0)) | ((x > 1) & (grad < 0))
        return grad.masked_fill(blocked, 0.0)


def clamp_output(x: torch.Tensor) -> torch.Tensor:
    """Clamp a raw model output to [0, 1], passing gradients straight through towards the range.

    Forward: ``x.clamp(0, 1)``. Backward: the incoming gradient is passed unchanged (identity, as
    a straight-through estimator) where ``0 <= x <= 1``, and also where ``x`` is out of range but
    a gradient-descent step would move it back towards [0, 1]; it is zeroed only where the step
    would push ``x`` further out (``x < 0`` with ``grad > 0``, ``x > 1`` with ``grad < 0``).
    So an out-of-range output still learns from its error (a plain clamp would give it zero
    gradient), but a loss whose optimum lies on the boundary — a soft Dice loss on an empty mask
    keeps asking for smaller values — cannot drive the raw output to ever larger magnitudes.
    Any shape; returns the same shape.
    """
    return _ClampOutput.apply(x)


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
