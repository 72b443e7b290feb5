"""What a forward pass checks before any work: the inputs' shapes, dtype, device and values
against the model, and its estimated peak memory (SPEC §6). Errors are ValueErrors naming the
offending input, so a user's mistake never surfaces as a shape error deep inside a convolution.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from neuralizer.model.config import ModelConfig
from neuralizer.model.limits import check_memory, estimate_forward_bytes

if TYPE_CHECKING:
    from neuralizer.model.network import Neuralizer

# Largest input magnitude accepted (inputs are rescaled to about [0, 1]; SPEC §6).
MAX_ABS_VALUE = 1e4


def _describe(name: str, tensor: Tensor) -> str:
    return f"{name} has shape {tuple(tensor.shape)}"


def validate_inputs(
    config: ModelConfig, target_in: Tensor, context_in: Tensor, context_out: Tensor
) -> None:
    """Raise ValueError naming the offending tensor when shapes do not fit ``config``."""
    for name, tensor, rank in (
        ("target_in", target_in, 4),
        ("context_in", context_in, 5),
        ("context_out", context_out, 5),
    ):
        if not isinstance(tensor, Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
        if not tensor.is_floating_point():
            raise ValueError(f"{name} must be a floating-point tensor, got dtype {tensor.dtype}")
        if tensor.ndim != rank:
            letters = "B×C×H×W" if rank == 4 else "B×L×C×H×W"
            raise ValueError(f"{_describe(name, tensor)}; expected rank {rank} ({letters})")
    batch, in_ch, height, width = target_in.shape
    if in_ch != config.in_channels:
        raise ValueError(
            f"{_describe('target_in', target_in)}; expected {config.in_channels} channels"
        )
    if batch < 1:
        raise ValueError(f"{_describe('target_in', target_in)}; the batch size must be at least 1")
    n_context = context_in.shape[1]
    if n_context < 1:
        raise ValueError(
            f"{_describe('context_in', context_in)}; the context needs at least one pair (L ≥ 1)"
        )
    expected = {
        "context_in": (batch, n_context, config.in_channels, height, width),
        "context_out": (batch, n_context, config.out_channels, height, width),
    }
    for name, tensor in (("context_in", context_in), ("context_out", context_out)):
        if tuple(tensor.shape) != expected[name]:
            raise ValueError(
                f"{_describe(name, tensor)}; expected {expected[name]} "
                f"(B, L, C, H, W matching target_in {tuple(target_in.shape)})"
            )
    multiple = config.size_multiple
    if height < multiple or width < multiple or height % multiple or width % multiple:
        raise ValueError(
            f"{_describe('target_in', target_in)}; H and W must be positive multiples of "
            f"{multiple} for {config.stages} stages (pad the images, then crop the result)"
        )


def validate_values(target_in: Tensor, context_in: Tensor, context_out: Tensor) -> None:
    """Raise ValueError for NaN/Inf or absurd magnitudes (one min/max pass per tensor).

    Images are expected rescaled to about [0, 1]; beyond ±MAX_ABS_VALUE the activations of a
    trained network are meaningless and can overflow float32 on the way through 15 residual units.
    """
    for name, tensor in (
        ("target_in", target_in),
        ("context_in", context_in),
        ("context_out", context_out),
    ):
        low, high = (float(v) for v in torch.aminmax(tensor.detach()))
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ValueError(f"{name} contains NaN or Inf values; replace them (e.g. by 0) first")
        if max(-low, high) > MAX_ABS_VALUE:
            raise ValueError(
                f"{name} has values in [{low:.3g}, {high:.3g}]; the network expects images "
                f"rescaled to about [0, 1] (at most ±{MAX_ABS_VALUE:g}): rescale them first"
            )


def check_forward(
    model: Neuralizer,
    target_in: Tensor,
    context_in: Tensor,
    context_out: Tensor,
    fast: bool | None,
    max_memory: float | None,
) -> bool:
    """Every check of ``Neuralizer.forward``; returns whether the fast path runs.

    ``fast=None`` picks it when autograd is off. ``max_memory``: bytes (None: the memory
    available now; ``math.inf``: no memory check, the caller checked the whole job up front).
    """
    validate_inputs(model.config, target_in, context_in, context_out)
    if fast is None:
        fast = not torch.is_grad_enabled()
    if fast and torch.is_grad_enabled():
        raise ValueError("the fast path is inference-only: call it under torch.no_grad()")
    _check_resources(model, target_in, context_in, context_out, fast, max_memory)
    validate_values(target_in, context_in, context_out)
    return fast


def _check_resources(
    model: Neuralizer,
    target_in: Tensor,
    context_in: Tensor,
    context_out: Tensor,
    fast: bool,
    max_memory: float | None,
) -> None:
    """dtype and device must match the weights; the estimated memory must fit the limit."""
    weight = model.target_embed.weight
    tensors = {"target_in": target_in, "context_in": context_in, "context_out": context_out}
    for name, tensor in tensors.items():
        if tensor.dtype != weight.dtype or tensor.device != weight.device:
            raise ValueError(
                f"{name} is {tensor.dtype} on {tensor.device} but the model is {weight.dtype} "
                f"on {weight.device}: convert with .to(model.target_embed.weight)"
            )
    if max_memory == math.inf:  # the caller checked the whole job up front
        return
    batch, n_context, _, height, width = context_in.shape
    grad = torch.is_grad_enabled() and any(p.requires_grad for p in model.parameters())
    path = "fast" if fast else ("grad" if grad else "plain")
    what = (
        f"a forward pass with B={batch}, L={n_context}, H×W={height}×{width}, "
        f"c={model.config.channels} ({path} path)"
    )
    check_pass_memory(model.config, batch, n_context, (height, width), path, max_memory, what)


def check_pass_memory(
    config: ModelConfig,
    batch: int,
    n_context: int,
    size: tuple[int, int],
    path: str,
    max_memory: float | None,
    what: str,
) -> None:
    """MemoryLimitError if a pass of ``batch`` × ``n_context`` pairs of ``size`` H×W on ``path``
    ("fast", "plain" or "grad") would exceed ``max_memory`` bytes (None: the memory available)."""
    estimate = estimate_forward_bytes(
        config.channels, config.in_channels, config.out_channels, batch, n_context, *size,
        path=path,
    )  # fmt: skip
    check_memory(estimate, max_memory, what)
