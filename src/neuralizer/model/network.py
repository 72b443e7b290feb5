"""The Neuralizer network (SPEC §1): a U-Net of Pairwise-Conv-Avg blocks.

Shapes: ``target_in`` B×Cin×H×W, ``context_in`` B×L×Cin×H×W, ``context_out`` B×L×Cout×H×W,
result B×Cout×H×W. Inside, the target stream ``r_x`` is B×c×h×w and the context stream ``r_C`` is
(B·L)×c×h×w (the L members batched, so one shared module processes all of them).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from einops import rearrange, reduce, repeat
from torch import Tensor, nn

from neuralizer.model.limits import check_memory, estimate_forward_bytes

# Sanity bounds (the paper's model: 64, 4, 3, 1): a config beyond them is a corrupt file or a typo.
_CONFIG_LIMITS = {"channels": 4096, "stages": 12, "in_channels": 64, "out_channels": 64}


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a Neuralizer network; saved with every checkpoint."""

    channels: int = 64
    stages: int = 4
    in_channels: int = 3
    out_channels: int = 1

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"ModelConfig.{f.name} must be a positive integer, got {value!r}")
            if value > _CONFIG_LIMITS[f.name]:
                raise ValueError(
                    f"ModelConfig.{f.name}={value} is beyond any sensible network "
                    f"(at most {_CONFIG_LIMITS[f.name]})"
                )

    @property
    def size_multiple(self) -> int:
        """H and W must be multiples of this (one 2×2 pooling per stage transition)."""
        return 2 ** (self.stages - 1)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"unknown ModelConfig field(s) {unknown}; known fields: {sorted(known)}"
            )
        return cls(**values)


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
    ) -> Tensor:
        """B×Cin×H×W, B×L×Cin×H×W, B×L×Cout×H×W → B×Cout×H×W (no output activation).

        Checked before any work (ValueError naming the input): shapes, dtype and device against
        the model, NaN/Inf and magnitudes beyond ±``MAX_ABS_VALUE``, and the estimated peak
        memory against ``max_memory`` bytes (default: the memory available now; ``math.inf``
        disables the check) — a ``MemoryLimitError``, also a ValueError.
        """
        validate_inputs(self.config, target_in, context_in, context_out)
        if fast is None:
            fast = not torch.is_grad_enabled()
        if fast and torch.is_grad_enabled():
            raise ValueError("the fast path is inference-only: call it under torch.no_grad()")
        self._check_resources(target_in, context_in, context_out, fast, max_memory)
        validate_values(target_in, context_in, context_out)
        if fast:
            from neuralizer.model.fast import fast_forward

            return fast_forward(self, target_in, context_in, context_out)
        return self.plain_forward(target_in, context_in, context_out)

    def _check_resources(
        self,
        target_in: Tensor,
        context_in: Tensor,
        context_out: Tensor,
        fast: bool,
        max_memory: float | None,
    ) -> None:
        """dtype and device must match the weights; the estimated memory must fit the limit."""
        weight = self.target_embed.weight
        tensors = {"target_in": target_in, "context_in": context_in, "context_out": context_out}
        for name, tensor in tensors.items():
            if tensor.dtype != weight.dtype or tensor.device != weight.device:
                raise ValueError(
                    f"{name} is {tensor.dtype} on {tensor.device} but the model is {weight.dtype} "
                    f"on {weight.device}: convert with .to(model.target_embed.weight)"
                )
        batch, n_context, _, height, width = context_in.shape
        grad = torch.is_grad_enabled() and any(p.requires_grad for p in self.parameters())
        path = "fast" if fast else ("grad" if grad else "plain")
        config = self.config
        estimate = estimate_forward_bytes(
            config.channels,
            config.in_channels,
            config.out_channels,
            batch,
            n_context,
            height,
            width,
            path=path,
        )
        check_memory(estimate, max_memory, f"a forward pass with B={batch}, L={n_context}, "
                     f"H×W={height}×{width}, c={config.channels} ({path} path)")  # fmt: skip

    def plain_forward(self, target_in: Tensor, context_in: Tensor, context_out: Tensor) -> Tensor:
        """The straightforward form of SPEC §1 (context batched as (B·L)×c×H×W); golden-tested."""
        r_x = self.target_embed(target_in)
        pairs = torch.cat([context_in, context_out], dim=2)
        r_C = self.context_embed(rearrange(pairs, "B L C H W -> (B L) C H W"))
        skips = []
        for stage, block in enumerate(self.encoder):
            if stage > 0:
                r_x, r_C = F.max_pool2d(r_x, 2), F.max_pool2d(r_C, 2)
            r_x, r_C = block(r_x, r_C)
            skips.append((r_x, r_C))
        for up, block, (skip_x, skip_C) in zip(
            self.up, self.decoder, reversed(skips[:-1]), strict=True
        ):
            r_x, r_C = block(*up(r_x, r_C, skip_x, skip_C))
        return self.out_conv(self.out_res(r_x))

    @classmethod
    def from_released_state_dict(cls, state_dict: dict[str, Tensor]) -> Neuralizer:
        """Build and load a model from the authors' released state dict (keys ``net.…``)."""
        from neuralizer.model.released import config_from_released, convert_released_keys

        config = config_from_released(state_dict)
        converted = convert_released_keys(state_dict)
        with torch.device("meta"):  # shapes first, before allocating anything
            expected = cls(config).state_dict()
        mismatched = [
            f"{key}: {tuple(converted[key].shape)} instead of {tuple(value.shape)}"
            for key, value in expected.items()
            if key in converted and converted[key].shape != value.shape
        ]
        missing = sorted(set(expected) - set(converted))
        if mismatched or missing or set(converted) - set(expected):
            extra = sorted(set(converted) - set(expected))
            problems = (
                mismatched + [f"missing {k}" for k in missing] + [f"extra {k}" for k in extra]
            )
            raise ValueError(
                f"the released state dict does not fit {config}: " + "; ".join(problems[:5])
            )
        model = cls(config)
        model.load_state_dict({k: v.float() for k, v in converted.items()}, strict=True)
        return model.eval()
