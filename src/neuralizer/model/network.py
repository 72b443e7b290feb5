"""The Neuralizer network (SPEC §1): a U-Net of Pairwise-Conv-Avg blocks.

Shapes: ``target_in`` B×Cin×H×W, ``context_in`` B×L×Cin×H×W, ``context_out`` B×L×Cout×H×W,
result B×Cout×H×W. Inside, the target stream ``r_x`` is B×c×h×w and the context stream ``r_C`` is
(B·L)×c×h×w (the L members batched, so one shared module processes all of them).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange, reduce, repeat
from torch import Tensor, nn

from neuralizer.model import fast as fast_path
from neuralizer.model.config import ModelConfig
from neuralizer.model.guards import check_forward


def conv1x1(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=1)


class ResUnit(nn.Module):
    """conv3×3 → GELU → conv3×3, then GELU(input + that). Exact (erf) GELU, no normalisation."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x + self.conv2(F.gelu(self.conv1(x))))


class PairwiseConvAvg(nn.Module):
    """One Pairwise-Conv-Avg block: residual units per stream, then pairwise 1×1 convs.

    ``target_combine`` is k_x and ``context_combine`` is k_C, both 2c→c on ``cat(r_C_i, r_x)``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.target_res = ResUnit(channels)
        self.context_res = ResUnit(channels)
        self.target_combine = conv1x1(2 * channels, channels)
        self.context_combine = conv1x1(2 * channels, channels)

    def forward(self, r_x: Tensor, r_C: Tensor) -> tuple[Tensor, Tensor]:
        """r_x: B×c×h×w, r_C: (B·L)×c×h×w → the same shapes."""
        n_context = r_C.shape[0] // r_x.shape[0]
        r_x = self.target_res(r_x)
        r_C = self.context_res(r_C)
        pairs = torch.cat([r_C, repeat(r_x, "B c h w -> (B L) c h w", L=n_context)], dim=1)
        mean_update = reduce(
            self.target_combine(pairs), "(B L) c h w -> B c h w", "mean", L=n_context
        )
        return F.gelu(r_x + mean_update), F.gelu(r_C + self.context_combine(pairs))

    def split_forward(self, r_x: Tensor, r_C: Tensor) -> tuple[Tensor, Tensor]:
        """The same function by SPEC §1's exact split algebra, differentiable (training):
        ``mean_i(k_x · cat(r_C_i, r_x)) = W_xc · mean_i(r_C_i) + W_xx · r_x + b`` (one conv on
        the mean instead of L) and ``k_C · cat(r_C_i, r_x) = W_cc · r_C_i + (W_cx · r_x + b)``
        (the target half once per batch item), with no L-fold copy of r_x."""
        n_context, c = r_C.shape[0] // r_x.shape[0], r_x.shape[1]
        r_x = self.target_res(r_x)
        r_C = self.context_res(r_C)
        w_x, w_C = self.target_combine.weight, self.context_combine.weight
        mean_C = reduce(r_C, "(B L) c h w -> B c h w", "mean", L=n_context)
        mean_update = F.conv2d(mean_C, w_x[:, :c]) + F.conv2d(
            r_x, w_x[:, c:], self.target_combine.bias
        )
        target_half = F.conv2d(r_x, w_C[:, c:], self.context_combine.bias)
        context_update = F.conv2d(r_C, w_C[:, :c]) + repeat(
            target_half, "B c h w -> (B L) c h w", L=n_context
        )
        return F.gelu(r_x + mean_update), F.gelu(r_C + context_update)


class UpFuse(nn.Module):
    """Bilinear ×2 of both streams, cat(upsampled, skip), then a 1×1 conv 2c→c per stream."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.target_fuse = conv1x1(2 * channels, channels)
        self.context_fuse = conv1x1(2 * channels, channels)

    @staticmethod
    def fuse(conv: nn.Conv2d, low: Tensor, skip: Tensor) -> Tensor:
        up = F.interpolate(low, scale_factor=2, mode="bilinear", align_corners=False)
        return conv(torch.cat([up, skip], dim=1))

    def forward(
        self, r_x: Tensor, r_C: Tensor, skip_x: Tensor, skip_C: Tensor
    ) -> tuple[Tensor, Tensor]:
        return self.fuse(self.target_fuse, r_x, skip_x), self.fuse(self.context_fuse, r_C, skip_C)


class Neuralizer(nn.Module):
    """g(target_in, context_in, context_out) -> prediction, SPEC §1.

    ``forward(..., fast=None)`` picks the fast inference path when autograd is off
    (``torch.inference_mode()`` or ``torch.no_grad()``) and the plain form otherwise.
    """

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or ModelConfig()
        c = config.channels
        self.target_embed = conv1x1(config.in_channels, c)
        self.context_embed = conv1x1(config.in_channels + config.out_channels, c)
        self.encoder = nn.ModuleList(PairwiseConvAvg(c) for _ in range(config.stages))
        self.up = nn.ModuleList(UpFuse(c) for _ in range(config.stages - 1))
        self.decoder = nn.ModuleList(PairwiseConvAvg(c) for _ in range(config.stages - 1))
        self.out_res = ResUnit(c)
        self.out_conv = conv1x1(c, config.out_channels)

    def forward(
        self,
        target_in: Tensor,
        context_in: Tensor,
        context_out: Tensor,
        *,
        fast: bool | None = None,
        max_memory: float | None = None,
        split: bool = False,
        counts: Tensor | None = None,
    ) -> Tensor:
        """B×Cin×H×W, B×L×Cin×H×W, B×L×Cout×H×W → B×Cout×H×W (no output activation).

        Checked before any work by :func:`neuralizer.model.guards.check_forward` (ValueError
        naming the input): shapes, dtype and device against the model, NaN/Inf and absurd
        magnitudes, and the estimated peak memory against ``max_memory`` bytes (default: the
        memory available now; ``math.inf``: not checked here, for callers that checked the whole
        job up front) — a ``MemoryLimitError``, also a ValueError. ``split``: the plain form's
        blocks by the exact split algebra (:meth:`PairwiseConvAvg.split_forward`), differentiable,
        for training. ``counts`` (fast path only): how many times each of the L pairs counts in
        the context's means, the same function as the pairs repeated that many times (an
        ensemble's draw with replacement computes each drawn pair once).
        """
        fast = check_forward(self, target_in, context_in, context_out, fast, max_memory)
        if counts is not None and not fast:
            raise ValueError("counts needs the fast path (inference under torch.no_grad())")
        if fast:
            return fast_path.fast_forward(self, target_in, context_in, context_out, counts)
        return self.plain_forward(target_in, context_in, context_out, split=split)

    def plain_forward(
        self, target_in: Tensor, context_in: Tensor, context_out: Tensor, *, split: bool = False
    ) -> Tensor:
        """The straightforward form of SPEC §1 (context batched as (B·L)×c×H×W); golden-tested.
        ``split``: each block by :meth:`PairwiseConvAvg.split_forward` (the same function)."""
        r_x = self.target_embed(target_in)
        pairs = torch.cat([context_in, context_out], dim=2)
        r_C = self.context_embed(rearrange(pairs, "B L C H W -> (B L) C H W"))
        skips = []
        for stage, block in enumerate(self.encoder):
            if stage > 0:
                r_x, r_C = F.max_pool2d(r_x, 2), F.max_pool2d(r_C, 2)
            r_x, r_C = block.split_forward(r_x, r_C) if split else block(r_x, r_C)
            skips.append((r_x, r_C))
        for up, block, (skip_x, skip_C) in zip(
            self.up, self.decoder, reversed(skips[:-1]), strict=True
        ):
            fused = up(r_x, r_C, skip_x, skip_C)
            r_x, r_C = block.split_forward(*fused) if split else block(*fused)
        return self.out_conv(self.out_res(r_x))
