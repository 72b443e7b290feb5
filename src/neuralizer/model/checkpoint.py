"""Our checkpoint format: one ``.safetensors`` file; its metadata describes the model.

The metadata (model config, geometry, training config, provenance) is the typed record
:class:`~neuralizer.model.metadata.CheckpointMetadata`. Nothing is pickled, so loading a
checkpoint cannot run code.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes

from neuralizer.files import write_atomically
from neuralizer.model.config import ModelConfig
from neuralizer.model.metadata import DEFAULT_WEIGHTS, CheckpointMetadata, Geometry
from neuralizer.model.network import Neuralizer


def save_checkpoint(
    path: str | Path,
    model: Neuralizer,
    *,
    geometry: Geometry | None = None,
    train_config: dict[str, Any] | None = None,
    provenance: dict[str, Any] | None = None,
) -> None:
    """Save ``model`` with its config, atomically; and its training ``geometry`` (None: not
    recorded, inferred from ``provenance`` on load), training config and provenance."""
    from neuralizer import __version__

    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    metadata = CheckpointMetadata(
        model.config,
        geometry or Geometry.inferred(provenance),
        train_config,
        {"code_version": __version__, **(provenance or {})},
        geometry_recorded=geometry is not None,
    )
    write_atomically(path, safetensors_bytes(tensors, metadata=metadata.to_strings()))


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], CheckpointMetadata]:
    """Tensors and checked metadata of a checkpoint; ValueError if it is not one of ours."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        with safe_open(path, framework="pt") as file:
            raw = file.metadata() or {}
            tensors = {key: file.get_tensor(key) for key in file.keys()}
    except (SafetensorError, OSError, ValueError) as error:
        raise ValueError(
            f"{path} is not a safetensors checkpoint ({error}). Neuralizer loads only safetensors "
            "files: pickle-based files (torch.save, .ckpt, .pt) are refused because reading them "
            "can run code. Convert the authors' .ckpt with `neuralizer convert-released`."
        ) from None
    return tensors, CheckpointMetadata.from_strings(raw, str(path))


def check_state_dict(path: str | Path, expected: dict, found: dict, what: str) -> None:
    """ValueError listing missing, unexpected and mis-shaped tensors of ``found``."""
    problems = [f"missing {k}" for k in expected if k not in found]
    problems += [f"unexpected {k}" for k in found if k not in expected]
    problems += [
        f"{k}: shape {tuple(found[k].shape)} in file, {tuple(v.shape)} expected"
        for k, v in expected.items()
        if k in found and found[k].shape != v.shape
    ]
    if problems:
        raise ValueError(f"{path} does not match {what}: " + "; ".join(problems[:5]))


#: Raw outputs of a trained model lie about in [0, 1] (images and masks are rescaled to it); on
#: a plain probe input, an output beyond this means weights no training produced.
MAX_PROBE_OUTPUT = 10.0


def probe_inputs(config: ModelConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A fixed, plausible input (no randomness): a bright disc on black as the target, two
    context pairs of discs and their masks; 32×32 (or the model's size multiple)."""
    size = max(32, config.size_multiple)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    r2 = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2).float() / size**2

    def disc(radius: float) -> torch.Tensor:
        return (r2 < radius**2).float()

    target = disc(0.3)[None, None].expand(1, config.in_channels, size, size) * 0.8
    c_in = torch.stack([disc(0.25), disc(0.35)])[None, :, None] * 0.8
    c_out = torch.stack([disc(0.15), disc(0.2)])[None, :, None]
    c_in = c_in.expand(1, 2, config.in_channels, size, size)
    c_out = c_out.expand(1, 2, config.out_channels, size, size)
    return target.contiguous(), c_in.contiguous(), c_out.contiguous()


def check_probe_output(model: Neuralizer, where: str) -> None:
    """ValueError if ``model``'s output on :func:`probe_inputs` is non-finite or beyond
    ±:data:`MAX_PROBE_OUTPUT`: finite but absurd weights (a file scaled by 1e18, say) would
    otherwise write NaN voxels or empty masks with exit status 0."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny input: one thread is fastest, and fast on a busy machine
    try:
        with torch.no_grad():
            output = model(*probe_inputs(model.config), max_memory=math.inf)
    finally:
        torch.set_num_threads(threads)
    if not bool(output.isfinite().all()):
        found = "NaN or Inf values"
    elif float(output.abs().max()) > MAX_PROBE_OUTPUT:
        found = f"values up to {float(output.abs().max()):.3g}"
    else:
        return
    raise ValueError(
        f"{where}: the model's output on a test input has {found}, where a trained model "
        f"gives values near [0, 1] (at most ±{MAX_PROBE_OUTPUT:g}): its weights are damaged "
        "or were not produced by training; use another checkpoint"
    )


#: width of the untrained network that the demo and the app run (and say so) without the shipped
#: weights file
UNTRAINED_CHANNELS = 32


def untrained(config: ModelConfig | None = None, seed: int = 0) -> Neuralizer:
    """A randomly initialised network in eval mode (default: c = :data:`UNTRAINED_CHANNELS`), its
    weights a function of ``seed`` alone; the global random generator is left as it was."""
    with torch.random.fork_rng():  # parameter init reads the global generator: isolate it
        torch.manual_seed(seed)
        return Neuralizer(config or ModelConfig(channels=UNTRAINED_CHANNELS)).eval()


def load(path: str | Path | None = None, *, device: str | torch.device = "cpu") -> Neuralizer:
    """Load a checkpoint; return a ready model in eval mode (``path=None``: the shipped one)."""
    if path is None:
        if not DEFAULT_WEIGHTS.is_file():
            raise FileNotFoundError(
                f"the shipped model's weights file is missing: {DEFAULT_WEIGHTS}; reinstall "
                "neuralizer, or pass the path of a checkpoint"
            )
        path = DEFAULT_WEIGHTS
    tensors, metadata = read_checkpoint(path)
    # Built on the meta device: shapes are checked before any memory is allocated for weights.
    with torch.device("meta"):
        model = Neuralizer(metadata.model)
    check_state_dict(path, model.state_dict(), tensors, "its model_config")
    problems = [f"{k}: dtype {v.dtype}" for k, v in tensors.items() if not v.is_floating_point()]
    problems += [f"{k}: NaN or Inf values" for k, v in tensors.items() if not v.isfinite().all()]
    if problems:
        raise ValueError(f"{path} holds unusable weights: " + "; ".join(problems[:5]))
    tensors = {k: v.float() for k, v in tensors.items()}
    model.load_state_dict(tensors, strict=True, assign=True)
    check_probe_output(model.eval(), str(path))
    model.metadata = metadata
    model.geometry = metadata.geometry
    model.provenance = metadata.provenance
    model.train_config = metadata.train_config
    return model.to(device).eval()
