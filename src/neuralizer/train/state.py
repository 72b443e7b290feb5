"""Exact-resume training state: model, Adam state, step, RNG state and counters.

One safetensors file (tensors) whose metadata holds JSON (counters, optimiser hyper-parameters,
config). Nothing is pickled. Written atomically, so a kill at any moment leaves the previous
state intact.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes
from torch.optim.swa_utils import AveragedModel

from neuralizer.files import write_atomically
from neuralizer.model.checkpoint import check_state_dict, read_checkpoint
from neuralizer.model.network import Neuralizer

FORMAT = "neuralizer-train-state/1"


@dataclass
class Progress:
    """Counters of a run; the batch of step ``s`` is a pure function of ``(seed, s, rank)``."""

    step: int = 0
    best_val: float = float("inf")
    best_step: int = -1
    bad_epochs: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)  # validation results


def save_state(
    path: Path,
    model: Neuralizer,
    optimizer: torch.optim.Optimizer,
    progress: Progress,
    config: dict,
    *,
    ema: AveragedModel | None = None,
) -> None:
    """``ema``: the weight average, if the run keeps one (its tensors go under "ema/")."""
    tensors = _prefixed("model/", model.state_dict())
    if ema is not None:
        tensors |= _prefixed("ema/", ema.state_dict())
    optim = optimizer.state_dict()
    for index, values in optim["state"].items():
        for name, value in values.items():
            tensors[f"optim/{index}/{name}"] = torch.as_tensor(value).detach().cpu().contiguous()
    tensors["rng/torch"] = torch.get_rng_state()
    metadata = {
        "format": FORMAT,
        "progress": json.dumps(progress.__dict__),
        "param_groups": json.dumps(optim["param_groups"]),
        "config": json.dumps(config),
    }
    write_atomically(path, safetensors_bytes(tensors, metadata=metadata))


def _prefixed(prefix: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {prefix + k: v.detach().cpu().contiguous() for k, v in state.items()}


def _unprefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}


def load_state(
    path: Path,
    model: Neuralizer,
    optimizer: torch.optim.Optimizer,
    *,
    ema: AveragedModel | None = None,
) -> tuple[Progress, dict]:
    """Restore model, optimiser and torch RNG in place; return the progress and the saved config.

    ``ema`` is restored too when the file holds an average; otherwise it is left as given (an
    average switched on at this resume). An average in the file that ``ema`` is None for is
    dropped.
    """
    try:
        with safe_open(path, framework="pt") as file:
            metadata = file.metadata() or {}
            tensors = {key: file.get_tensor(key) for key in file.keys()}
    except (SafetensorError, OSError) as error:
        raise ValueError(f"{path} is not a readable training state: {error}") from None
    if metadata.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} file")
    weights = _unprefixed("model/", tensors)
    check_state_dict(path, model.state_dict(), weights, "this config's model")
    try:
        decoded = {k: json.loads(metadata[k]) for k in ("progress", "param_groups", "config")}
        progress = Progress(**decoded["progress"])
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith("optim/"):
                _, index, name = key.split("/")
                state.setdefault(int(index), {})[name] = value
        rng = tensors["rng/torch"]
        model.load_state_dict(weights)
        averaged = _unprefixed("ema/", tensors)
        if ema is not None and averaged:
            ema.load_state_dict(averaged)
        optimizer.load_state_dict({"state": state, "param_groups": decoded["param_groups"]})
        torch.set_rng_state(rng)
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        # A file that passed the format check but was edited or written by other code.
        raise ValueError(
            f"{path} is a damaged training state ({error!r}); use a new run_dir"
        ) from None
    if not isinstance(decoded["config"], dict):
        raise ValueError(f"{path}: its config must be a JSON object")
    return progress, decoded["config"]


def load_initial_weights(model: Neuralizer, path: str | Path) -> None:
    """Load checkpoint ``path``'s weights into a new run's ``model`` (fine-tuning); ValueError if
    the checkpoint's architecture is not the model's."""
    tensors, metadata = read_checkpoint(path)
    if metadata.model != model.config:
        raise ValueError(
            f"{path} has the model {metadata.model}, the config asks for {model.config}: "
            "set model to the checkpoint's"
        )
    model.load_state_dict(tensors)
