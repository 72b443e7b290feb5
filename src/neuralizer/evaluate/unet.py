"""Task-specific U-Net baseline ("Baseline-seen", paper §4.5), scaled down, as resumable jobs.

One U-Net per task instance and training-set size n: trained for a fixed number of Adam steps
(:class:`~neuralizer.evaluate.config.UNetBudget`) on the instance's first n pool pairs, with the
training losses of Neuralizer (soft Dice or 10 × MSE on the clamped output). No augmentation, no
early stopping. A job directory holds ``latest.safetensors`` (weights and Adam state) and
``state.json`` while it runs, then ``model.safetensors`` and ``summary.json``; a rerun resumes
from the last checkpoint, and batch ``s`` is a pure function of ``(seed, s)``, so a resumed job
ends with the same weights as an uninterrupted one. Nothing is pickled.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes
from torch import Tensor, nn

from neuralizer.evaluate.config import UNetBudget
from neuralizer.files import write_atomically
from neuralizer.tasks.losses import batch_loss


class _Block(nn.Sequential):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1), nn.GELU(),
            nn.Conv2d(c_out, c_out, 3, padding=1), nn.GELU(),
        )  # fmt: skip


class UNet(nn.Module):
    """Plain 2D U-Net: ``stages`` resolutions of width ``channels``; B×3×H×W -> B×1×H×W.

    H and W must be multiples of ``2 ** (stages - 1)``.
    """

    def __init__(self, channels: int = 16, stages: int = 4, in_channels: int = 3) -> None:
        super().__init__()
        self.down = nn.ModuleList(
            [_Block(in_channels if i == 0 else channels, channels) for i in range(stages)]
        )
        self.up = nn.ModuleList([_Block(2 * channels, channels) for _ in range(stages - 1)])
        self.head = nn.Conv2d(channels, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        for block, skip in zip(self.up, reversed(skips[:-1]), strict=True):
            up = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([up, skip], dim=1))
        return self.head(x)


#: the budget fields that make a trained U-Net what it is (not where or on how many threads)
_RECIPE = ("steps", "batch_size", "channels", "stages", "lr")


def fingerprint(inputs: np.ndarray, outputs: np.ndarray) -> str:
    """Short hash of a training set (a job refuses to resume on other data)."""
    h = hashlib.sha256(np.ascontiguousarray(inputs, np.float32).tobytes())
    h.update(np.ascontiguousarray(outputs, np.float32).tobytes())
    return h.hexdigest()[:16]


def _new_model(budget: UNetBudget, seed: int) -> UNet:
    with torch.random.fork_rng():  # parameter init reads the global generator: isolate it
        torch.manual_seed(seed)
        return UNet(budget.channels, budget.stages)


def _save_progress(job: Path, model: UNet, optimizer, state: dict) -> None:
    tensors = {f"model.{k}": v.detach().contiguous() for k, v in model.state_dict().items()}
    for index, values in optimizer.state_dict()["state"].items():
        tensors.update({f"adam.{index}.{k}": v.contiguous() for k, v in values.items()})
    write_atomically(job / "latest.safetensors", safetensors_bytes(tensors))
    write_atomically(job / "state.json", json.dumps(state, indent=1).encode())


def _load_progress(job: Path, model: UNet, optimizer) -> dict:
    tensors = load_file(job / "latest.safetensors")
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    opt = optimizer.state_dict()
    adam: dict[int, dict[str, Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("adam."):
            _, index, name = key.split(".", 2)
            adam.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": adam, "param_groups": opt["param_groups"]})
    return json.loads((job / "state.json").read_text())


def train_unet(
    job: str | Path,
    inputs: np.ndarray,
    outputs: np.ndarray,
    segmentation_like: bool,
    budget: UNetBudget,
    *,
    seed: int = 0,
    stop_after: int | None = None,
) -> UNet:
    """Train (or resume, or just load) the U-Net of job folder ``job``; returns it in eval mode.

    ``inputs`` N×3×H×W and ``outputs`` N×1×H×W float32: the training pairs. ``stop_after``:
    leave after that many steps in this call (tests of resumption).
    """
    job = Path(job)
    model = _new_model(budget, seed)
    data = fingerprint(inputs, outputs)
    if (job / "model.safetensors").is_file():
        summary = json.loads((job / "summary.json").read_text())
        trained_with = {k: summary["budget"][k] for k in _RECIPE}
        if summary["data"] != data or trained_with != {k: getattr(budget, k) for k in _RECIPE}:
            raise ValueError(
                f"{job} was trained on other pairs or with another budget: delete it to retrain"
            )
        model.load_state_dict(load_file(job / "model.safetensors"))
        return model.eval()
    torch.set_num_threads(budget.threads)
    optimizer = torch.optim.Adam(model.parameters(), lr=budget.lr)
    state = {"step": 0, "seconds": 0.0, "data": data, "n_train": len(inputs), "loss": None}
    if (job / "latest.safetensors").is_file():
        state = _load_progress(job, model, optimizer)
        if state["data"] != data:
            raise ValueError(f"{job} was trained on other pairs: delete it to start again")
    x_all, y_all = torch.from_numpy(inputs), torch.from_numpy(outputs)
    seg = torch.full((budget.batch_size,), segmentation_like)
    start, done_here = time.monotonic() - state["seconds"], 0
    model.train()
    while state["step"] < budget.steps and (stop_after is None or done_here < stop_after):
        idx = np.random.default_rng([seed, state["step"]]).integers(len(inputs), size=seg.shape)
        loss = batch_loss(model(x_all[idx]), y_all[idx], seg)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        state.update(
            step=state["step"] + 1, loss=float(loss.detach()), seconds=time.monotonic() - start
        )
        done_here += 1
        if state["step"] % budget.checkpoint_every == 0 or state["step"] == budget.steps:
            _save_progress(job, model, optimizer, state)
    if state["step"] >= budget.steps:
        summary = {**state, "budget": budget.__dict__, "seed": seed}
        write_atomically(job / "model.safetensors", safetensors_bytes(model.state_dict()))
        write_atomically(job / "summary.json", json.dumps(summary, indent=1).encode())
    return model.eval()
