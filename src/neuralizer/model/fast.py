"""The fast inference path: the same function as ``Neuralizer.plain_forward``, computed cheaper.

What it changes, all exact up to float rounding (SPEC §1):
- the target update uses the mean over the context *before* its 1×1 conv,
  ``mean_i(k_x · cat(r_C_i, r_x)) = k_x · cat(mean_i r_C_i, r_x)``: one conv instead of L;
- the context update splits ``k_C · cat(r_C_i, r_x) = W_cc · r_C_i + (W_cx · r_x + b)`` and
  computes the target half once per batch item, broadcast over the L members;
- the context stream is processed in small chunks of members, in place, so that intermediates
  stay in cache and peak memory is about one copy of the stream per resolution;
- the context update of the last block, which nothing reads, is skipped;
- tensors are channels_last, the layout oneDNN convolutions use natively on CPU.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

if TYPE_CHECKING:  # network.py dispatches to this module: no import back at run time
    from neuralizer.model.network import Neuralizer, PairwiseConvAvg, ResUnit, UpFuse

# Context rows per chunk are chosen so that one chunk of the stream is about this many bytes.
CHUNK_BYTES = 8 * 2**20
# channels_last is what oneDNN convolutions use natively on CPU (benchmarks/bench_model.py
# measures the fast path with torch.contiguous_format too).
MEMORY_FORMAT = torch.channels_last
_gelu_ = torch.ops.aten.gelu_


def _chunks(n_rows: int, row: Tensor) -> tuple[range, int]:
    """Chunk starts over ``n_rows`` rows shaped like ``row``, and the rows per chunk."""
    rows = max(1, CHUNK_BYTES // max(1, row.numel() * row.element_size()))
    return range(0, n_rows, rows), rows


def _res_unit(unit: ResUnit, x: Tensor) -> Tensor:
    """GELU(x + conv2(GELU(conv1(x)))) with in-place activations; returns a new tensor."""
    hidden = _gelu_(unit.conv1(x))
    out = unit.conv2(hidden)
    del hidden
    return _gelu_(out.add_(x))


def _block(block: PairwiseConvAvg, r_x: Tensor, r_C: Tensor, *, update_context: bool) -> Tensor:
    """One Pairwise-Conv-Avg block. r_x: B×c×h×w (returned updated); r_C: (B·L)×c×h×w, in place."""
    batch, c = r_x.shape[:2]
    n_context = r_C.shape[0] // batch
    r_x = _res_unit(block.target_res, r_x)
    w_x, w_C = block.target_combine.weight, block.context_combine.weight
    # Target half of k_C, once per batch item: W_cx · r_x + b_C  (B×c×h×w).
    target_half = F.conv2d(r_x, w_C[:, c:], block.context_combine.bias)
    w_cc = w_C[:, :c]
    context_sum = torch.zeros_like(r_x)
    starts, rows = _chunks(n_context, r_C[0])
    for b in range(batch):
        for start in starts:
            lo, hi = b * n_context + start, b * n_context + min(start + rows, n_context)
            member = _res_unit(block.context_res, r_C[lo:hi])
            context_sum[b] += member.sum(0)
            if update_context:
                update = F.conv2d(member, w_cc).add_(target_half[b]).add_(member)
                r_C[lo:hi] = _gelu_(update)
            else:
                r_C[lo:hi] = member
    # k_x · cat(mean_i r_C_i, r_x): one 1×1 conv on the mean instead of L.
    pairs = torch.cat([context_sum.div_(n_context), r_x], dim=1)
    return _gelu_(F.conv2d(pairs, w_x, block.target_combine.bias).add_(r_x))


def _up_fuse(up: UpFuse, r_C: Tensor, skip_C: Tensor) -> Tensor:
    """Context half of UpFuse, chunk by chunk, written into ``skip_C`` (not needed afterwards)."""
    starts, rows = _chunks(r_C.shape[0], skip_C[0])
    for lo in starts:
        hi = min(lo + rows, r_C.shape[0])
        skip_C[lo:hi] = up.fuse(up.context_fuse, r_C[lo:hi], skip_C[lo:hi])
    return skip_C


@torch.no_grad()
def fast_forward(
    model: Neuralizer, target_in: Tensor, context_in: Tensor, context_out: Tensor
) -> Tensor:
    """Inference-only forward pass; same shapes and result as ``model.plain_forward``."""
    layout = MEMORY_FORMAT
    r_x = model.target_embed(target_in.contiguous(memory_format=layout))
    pairs = torch.cat([context_in, context_out], dim=2).flatten(0, 1)
    r_C = model.context_embed(pairs.contiguous(memory_format=layout))
    del pairs
    n_blocks = len(model.encoder) + len(model.decoder)
    skips = []
    for stage, block in enumerate(model.encoder):
        if stage > 0:
            r_x, r_C = F.max_pool2d(r_x, 2), F.max_pool2d(r_C, 2)
        r_x = _block(block, r_x, r_C, update_context=n_blocks > 1)
        skips.append((r_x, r_C))
    skips.pop()
    for index, (up, block) in enumerate(zip(model.up, model.decoder, strict=True)):
        skip_x, skip_C = skips.pop()
        r_x = up.fuse(up.target_fuse, r_x, skip_x)
        r_C = _up_fuse(up, r_C, skip_C)
        r_x = _block(block, r_x, r_C, update_context=index < len(model.decoder) - 1)
    result = model.out_conv(_res_unit(model.out_res, r_x))
    return result.contiguous()
