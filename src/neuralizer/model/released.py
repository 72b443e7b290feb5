"""The authors' released checkpoint layout (keys ``net.…``) and its conversion to ours."""

from __future__ import annotations

import re
from pathlib import Path
from pickle import UnpicklingError  # the exception class only: nothing here unpickles

import torch
from torch import Tensor

from neuralizer.model.config import ModelConfig
from neuralizer.model.network import Neuralizer

# (released pattern, our replacement), applied in order; "*.module.*" marks context-stream modules.
_KEY_RULES: tuple[tuple[str, str], ...] = (
    (r"^target_embedding\.", "target_embed."),
    (r"^context_embedding\.module\.", "context_embed."),
    (r"^(enc|dec)_blocks\.(\d+)\.context_conv\.module\.layers\.0\.", r"\1.\2.context_res.conv1."),
    (r"^(enc|dec)_blocks\.(\d+)\.context_conv\.module\.layers\.2\.", r"\1.\2.context_res.conv2."),
    (r"^(enc|dec)_blocks\.(\d+)\.target_conv\.layers\.0\.", r"\1.\2.target_res.conv1."),
    (r"^(enc|dec)_blocks\.(\d+)\.target_conv\.layers\.2\.", r"\1.\2.target_res.conv2."),
    (r"^(enc|dec)_blocks\.(\d+)\.combine_conv_target\.module\.", r"\1.\2.target_combine."),
    (r"^(enc|dec)_blocks\.(\d+)\.combine_conv_context\.module\.", r"\1.\2.context_combine."),
    (r"^upsample_blocks\.(\d+)\.context_conv_layer\.module\.", r"up.\1.context_fuse."),
    (r"^upsample_blocks\.(\d+)\.target_conv_layer\.", r"up.\1.target_fuse."),
    (r"^output_block\.block\.0\.layers\.0\.", "out_res.conv1."),
    (r"^output_block\.block\.0\.layers\.2\.", "out_res.conv2."),
    (r"^output_block\.block\.1\.", "out_conv."),
    (r"^enc\.", "encoder."),
    (r"^dec\.", "decoder."),
)


def _strip_prefix(key: str) -> str:
    for prefix in ("state_dict/", "net."):
        if key.startswith(prefix):
            key = key[len(prefix) :]
    return key


def convert_released_keys(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename the authors' keys to ours. Unknown keys raise ValueError (nothing is dropped)."""
    converted = {}
    for key, value in state_dict.items():
        new = _strip_prefix(key)
        for pattern, replacement in _KEY_RULES:
            new = re.sub(pattern, replacement, new)
        if new == _strip_prefix(key):
            raise ValueError(f"unexpected key {key!r} in the released state dict")
        converted[new] = torch.as_tensor(value)
    return converted


def config_from_released(state_dict: dict[str, Tensor]) -> ModelConfig:
    """Infer channels, stages and channel counts from the key shapes of a released state dict."""
    shapes = {_strip_prefix(k): tuple(v.shape) for k, v in state_dict.items()}
    try:
        channels, in_channels = shapes["target_embedding.weight"][:2]
        pair_channels = shapes["context_embedding.module.weight"][1]
        out_channels = shapes["output_block.block.1.weight"][0]
        stages = 1 + max(int(k.split(".")[1]) for k in shapes if k.startswith("enc_blocks."))
    except KeyError as missing:
        raise ValueError(
            f"not a released Neuralizer state dict: key {missing} is missing"
        ) from None
    except (ValueError, IndexError) as error:  # a key or shape that is not of this layout
        raise ValueError(f"not a released Neuralizer state dict ({error})") from None
    if pair_channels != in_channels + out_channels:
        raise ValueError(
            f"context embedding takes {pair_channels} channels, expected "
            f"{in_channels} + {out_channels}: not a Neuralizer layout"
        )
    return ModelConfig(channels, stages, in_channels, out_channels)


def _unreadable(path: Path, error: BaseException) -> str:
    detail = str(error).splitlines()[0] if str(error) else type(error).__name__
    return f"{path} is not a readable PyTorch checkpoint ({detail})"


def _unreadable_to_value_error(path: Path, *, weights_only: bool):
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only)
    except Exception as error:  # a damaged file raises anything from EOFError to KeyError
        raise ValueError(_unreadable(path, error)) from None


def load_released_checkpoint(path: str | Path, *, trust_pickle: bool = False) -> dict[str, Tensor]:
    """Read the state dict from an authors' PyTorch-Lightning ``.ckpt``.

    This is the project's only ``torch.load``: with ``weights_only=True``, which cannot run code.
    If that refuses the file, it is only read with ``trust_pickle=True``, which can run arbitrary
    code embedded in the file: use it only for files from a source you trust.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except UnpicklingError as error:  # what the weights-only unpickler raises for unsafe content
        if not trust_pickle:
            raise PermissionError(
                f"{path} cannot be read safely: torch.load(weights_only=True) refused it "
                f"({str(error).splitlines()[0]}). "
                "The file holds Python objects beyond tensors (or is no checkpoint at all), and "
                "unpickling them can run arbitrary code. If you trust where it came from, rerun "
                "with --trust-pickle."
            ) from None
        payload = _unreadable_to_value_error(path, weights_only=False)
    except Exception as error:  # truncated or damaged archives: EOFError, RuntimeError, ...
        raise ValueError(_unreadable(path, error)) from None
    state_dict = payload.get("state_dict", payload) if isinstance(payload, dict) else None
    if not isinstance(state_dict, dict) or not all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in state_dict.items()
    ):
        raise ValueError(f"{path} holds no state dict of named tensors")
    return {k: v for k, v in state_dict.items() if k.startswith("net.")} or state_dict


def model_from_released(state_dict: dict[str, Tensor]) -> Neuralizer:
    """Build and load a model from the authors' released state dict (keys ``net.…``)."""
    config = config_from_released(state_dict)
    converted = convert_released_keys(state_dict)
    with torch.device("meta"):  # shapes first, before allocating anything
        expected = Neuralizer(config).state_dict()
    mismatched = [
        f"{key}: {tuple(converted[key].shape)} instead of {tuple(value.shape)}"
        for key, value in expected.items()
        if key in converted and converted[key].shape != value.shape
    ]
    missing = sorted(set(expected) - set(converted))
    if mismatched or missing or set(converted) - set(expected):
        extra = sorted(set(converted) - set(expected))
        problems = mismatched + [f"missing {k}" for k in missing] + [f"extra {k}" for k in extra]
        raise ValueError(
            f"the released state dict does not fit {config}: " + "; ".join(problems[:5])
        )
    model = Neuralizer(config)
    model.load_state_dict({k: v.float() for k, v in converted.items()}, strict=True)
    return model.eval()
