"""The fast inference path: the same function as ``Neuralizer.plain_forward``, computed cheaper.

What it changes, all exact up to float rounding (SPEC §1):
- the target update uses the mean over the context *before* its 1×1 conv,
  ``mean_i(k_x · cat(r_C_i, r_x)) = k_x · cat(mean_i r_C_i, r_x)``: one conv instead of L;
- the context update splits ``k_C · cat(r_C_i, r_x) = W_cc · r_C_i + (W_cx · r_x + b)`` and
  computes the target half once per batch item, broadcast over the L members;
- the blocks' residuals fold into those 1×1 convs: ``r + W · r = (W + I) · r``;
- the context stream is processed in small chunks of members, in place, so that intermediates
  stay in cache and peak memory is about one copy of the stream per resolution;
- the up-fusion's 1×1 conv on ``cat(up(r), skip)`` splits the same way,
  ``W · cat(up(r), skip) + b = up(W_u · r) + W_s · skip + b``: bilinear upsampling mixes pixels
  with weights summing to one and the 1×1 conv mixes channels, so they commute; the ``W_u`` half
  runs at the lower resolution (a quarter of its cost) and no concatenation is built;
- the context update of the last block, which nothing reads, is skipped;
- tensors are channels_last, the layout oneDNN convolutions use natively on CPU, and so are the
  weights, converted once per pass (a convolution given a weight in the other layout reorders it
  on every call, that is on every chunk);
- the first convolution of each residual unit carries its GELU as a oneDNN post-op on CPU;
- the context mean is accumulated by in-place additions (``sum(0)`` over a channels_last chunk
  costs several times an addition).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

if TYPE_CHECKING:  # network.py dispatches to this module: no import back at run time
    from neuralizer.model.network import Neuralizer, PairwiseConvAvg, ResUnit, UpFuse

# Context rows per chunk are chosen so that one chunk of the stream is about this many bytes.
CHUNK_BYTES = 8 * 2**20
# channels_last is what oneDNN convolutions use natively on CPU (benchmarks/bench_model.py
# measures the fast path with torch.contiguous_format too).
MEMORY_FORMAT = torch.channels_last
_gelu_ = torch.ops.aten.gelu_
# oneDNN's convolution with a fused activation (PyTorch's CPU builds with mkldnn; its "gelu" with
# algorithm "none" is the exact erf GELU): None where the build lacks it.
_FUSED_CONV = (
    getattr(getattr(torch.ops, "mkldnn", None), "_convolution_pointwise", None)
    if torch.backends.mkldnn.is_available()
    else None
)


class _Weights:
    """Convolution weights in the pass's memory format, converted once per pass."""

    def __init__(self, layout: torch.memory_format) -> None:
        self.layout = layout
        self._cache: dict[tuple[int, int, int], Tensor] = {}

    def __call__(self, conv: nn.Conv2d, lo: int = 0, hi: int | None = None) -> Tensor:
        """``conv.weight[:, lo:hi]`` in the pass's layout (input channels ``lo:hi``)."""
        hi = conv.weight.shape[1] if hi is None else hi
        key = (id(conv), lo, hi)
        if key not in self._cache:
            self._cache[key] = conv.weight[:, lo:hi].contiguous(memory_format=self.layout)
        return self._cache[key]

    def plus_identity(self, conv: nn.Conv2d, lo: int, hi: int) -> Tensor:
        """``conv.weight[:, lo:hi] + I`` (square 1×1): ``W · r + r`` as one convolution."""
        key = (id(conv), lo, -hi)
        if key not in self._cache:
            weight = conv.weight[:, lo:hi].clone()
            weight[:, :, 0, 0] += torch.eye(hi - lo, dtype=weight.dtype, device=weight.device)
            self._cache[key] = weight.contiguous(memory_format=self.layout)
        return self._cache[key]

    def conv(self, conv: nn.Conv2d, x: Tensor) -> Tensor:
        return F.conv2d(x, self(conv), conv.bias, padding=conv.padding)

    def conv_gelu(self, conv: nn.Conv2d, x: Tensor) -> Tensor:
        """GELU(conv(x)): on CPU as oneDNN's convolution with the exact GELU as a post-op, so
        the activation is applied while the output is still in cache (where that operator is
        missing or refuses the input, convolution and then GELU in place)."""
        if x.device.type == "cpu" and x.dtype == torch.float32 and _FUSED_CONV is not None:
            try:
                pad, stride, dilation = list(conv.padding), list(conv.stride), list(conv.dilation)
                return _FUSED_CONV(
                    x, self(conv), conv.bias, pad, stride, dilation, conv.groups, "gelu", [], "none"
                )
            except RuntimeError:
                pass
        return _gelu_(self.conv(conv, x))


def _chunks(n_rows: int, row: Tensor) -> tuple[range, int]:
    """Chunk starts over ``n_rows`` rows shaped like ``row``, and the rows per chunk."""
    rows = max(1, CHUNK_BYTES // max(1, row.numel() * row.element_size()))
    return range(0, n_rows, rows), rows


def _res_unit(weights: _Weights, unit: ResUnit, x: Tensor) -> Tensor:
    """GELU(x + conv2(GELU(conv1(x)))) with in-place activations; returns a new tensor."""
    hidden = weights.conv_gelu(unit.conv1, x)
    out = weights.conv(unit.conv2, hidden)
    del hidden
    return _gelu_(out.add_(x))


def _block(
    weights: _Weights,
    block: PairwiseConvAvg,
    r_x: Tensor,
    r_C: Tensor,
    *,
    update_context: bool,
    counts: list[float] | None = None,
) -> Tensor:
    """One Pairwise-Conv-Avg block. r_x: B×c×h×w (returned updated); r_C: (B·L)×c×h×w, in place.

    In place rather than chunks replaced by new tensors: that saves the copy back, but measured
    with glibc's allocator the freed and kept chunks interleave and the resident peak grew by
    about 70 % at L = 32."""
    batch, c = r_x.shape[:2]
    n_context = r_C.shape[0] // batch
    r_x = _res_unit(weights, block.target_res, r_x)
    # Target half of k_C, once per batch item: W_cx · r_x + b_C  (B×c×h×w).
    target_half = F.conv2d(r_x, weights(block.context_combine, c), block.context_combine.bias)
    # W_cc · r_C_i + r_C_i (the residual) as one conv with W_cc + I: one pass over the stream less.
    w_cc = weights.plus_identity(block.context_combine, 0, c)
    context_sum = torch.zeros_like(r_x)
    starts, rows = _chunks(n_context, r_C[0])
    for b in range(batch):
        total = context_sum[b]
        for start in starts:
            lo, hi = b * n_context + start, b * n_context + min(start + rows, n_context)
            member = _res_unit(weights, block.context_res, r_C[lo:hi])
            for index, row in enumerate(member, start):
                total.add_(row) if counts is None else total.add_(row, alpha=counts[index])
            if update_context:
                member = _gelu_(F.conv2d(member, w_cc).add_(target_half[b]))
            r_C[lo:hi] = member
    # r_x + k_x · cat(mean_i r_C_i, r_x) = W_xc · mean_i r_C_i + (W_xx + I) · r_x + b: one conv
    # on the mean instead of L, no concatenation, the residual folded into the weight.
    k_x = block.target_combine
    update = F.conv2d(r_x, weights.plus_identity(k_x, c, 2 * c), k_x.bias)
    mean_C = context_sum.div_(n_context if counts is None else sum(counts))
    update += F.conv2d(mean_C, weights(k_x, 0, c))
    return _gelu_(update)


def _fuse(weights: _Weights, conv: nn.Conv2d, low: Tensor, skip: Tensor) -> Tensor:
    """``conv(cat(up(low), skip))`` as ``up(W_u · low) + W_s · skip + b`` (see the module's
    docstring): the upsampled half's 1×1 conv at the lower resolution."""
    c = low.shape[1]
    low_mixed = F.conv2d(low, weights(conv, 0, c))
    up = F.interpolate(low_mixed, scale_factor=2, mode="bilinear", align_corners=False)
    return F.conv2d(skip, weights(conv, c), conv.bias).add_(up)


def _up_fuse(weights: _Weights, up: UpFuse, r_C: Tensor, skip_C: Tensor) -> Tensor:
    """Context half of UpFuse, chunk by chunk, written into ``skip_C`` (not needed afterwards)."""
    starts, rows = _chunks(r_C.shape[0], skip_C[0])
    for lo in starts:
        hi = min(lo + rows, r_C.shape[0])
        skip_C[lo:hi] = _fuse(weights, up.context_fuse, r_C[lo:hi], skip_C[lo:hi])
    return skip_C


def _checked_counts(counts: Tensor, n_context: int) -> list[float]:
    values = [float(v) for v in counts.flatten().tolist()]
    if len(values) != n_context or not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"counts must be {n_context} positive numbers, one per context pair")
    return values


@torch.no_grad()
def fast_forward(
    model: Neuralizer,
    target_in: Tensor,
    context_in: Tensor,
    context_out: Tensor,
    counts: Tensor | None = None,
) -> Tensor:
    """Inference-only forward pass; same shapes and result as ``model.plain_forward``.

    ``counts`` (L, positive): each pair weighs that many members in the context's means, the
    same result as the plain form given each pair that many times. Members never interact except
    through those means, so a repeated member's stream would be computed identically each time.
    """
    if counts is not None:
        counts = _checked_counts(counts, context_in.shape[1])
    layout = MEMORY_FORMAT
    weights = _Weights(layout)
    r_x = weights.conv(model.target_embed, target_in.contiguous(memory_format=layout))
    pairs = torch.cat([context_in, context_out], dim=2).flatten(0, 1)
    r_C = weights.conv(model.context_embed, pairs.contiguous(memory_format=layout))
    del pairs
    n_blocks = len(model.encoder) + len(model.decoder)
    skips = []
    for stage, block in enumerate(model.encoder):
        if stage > 0:
            r_x, r_C = F.max_pool2d(r_x, 2), F.max_pool2d(r_C, 2)
        r_x = _block(weights, block, r_x, r_C, update_context=n_blocks > 1, counts=counts)
        skips.append((r_x, r_C))
    skips.pop()
    for index, (up, block) in enumerate(zip(model.up, model.decoder, strict=True)):
        skip_x, skip_C = skips.pop()
        r_x = _fuse(weights, up.target_fuse, r_x, skip_x)
        r_C = _up_fuse(weights, up, r_C, skip_C)
        last = index == len(model.decoder) - 1
        r_x = _block(weights, block, r_x, r_C, update_context=not last, counts=counts)
    result = weights.conv(model.out_conv, _res_unit(weights, model.out_res, r_x))
    return result.contiguous()
