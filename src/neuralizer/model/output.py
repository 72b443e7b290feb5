"""The model's output range: raw outputs are clamped to [0, 1] before any loss, metric or
prediction (SPEC §1: the network itself has no output activation). Training, evaluation and
prediction use this one function."""

from __future__ import annotations

import torch


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
