"""What the task augmentations (paper Table 2, SPEC §3) share.

A task augmentation changes the task of a whole episode: ``sample(task, rng) -> params`` is drawn
once per episode, and ``apply(pair, params) -> pair`` (deterministic) is applied identically to the
target pair and every context pair. Per-pair randomness (e.g. noise of a synthetic contrast) comes
from the pair's recorded ``seed``, so an augmented episode replays exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from neuralizer.data.subject import SliceSubject
from neuralizer.tasks.base import Task


@dataclass(frozen=True)
class Pair:
    """One (input, output) pair of an episode: 3×H×W and 1×H×W float32, with its subject."""

    input: np.ndarray
    output: np.ndarray
    subject: SliceSubject
    seed: int = 0

    def with_input(self, input: np.ndarray) -> Pair:
        return replace(self, input=np.asarray(input, np.float32))

    def with_output(self, output: np.ndarray) -> Pair:
        return replace(self, output=np.asarray(output, np.float32))


class TaskAugmentation(Protocol):
    name: str

    def applies_to(self, task: Task) -> bool: ...

    def sample(self, task: Task, rng: np.random.Generator) -> Any: ...

    def apply(self, pair: Pair, params: Any) -> Pair: ...


def image_channels(task: Task) -> tuple[int, ...]:
    """Input channels of ``task`` that carry an image (not a mask, not padding)."""
    return tuple(c for c in range(task.n_input_channels) if c != task.mask_channel)


def sample_image_target(task: Task, rng: np.random.Generator) -> str:
    """Which images an image-level augmentation changes: "input", "output" or "both".

    Masks (segmentation-like outputs) are never changed by image-level augmentations.
    """
    if task.segmentation_like:
        return "input"
    return str(rng.choice(("input", "output", "both")))


def map_images(
    pair: Pair,
    fn,
    target: str,
    channels: tuple[int, ...],
    mask_channel: int | None,
) -> Pair:
    """Apply ``fn`` (H×W -> H×W) to the input image ``channels`` and/or the image output.

    If the input carries a mask channel (inpainting), the changed channels stay zero inside it.
    """
    if target in ("input", "both"):
        x = pair.input.copy()
        keep = 1.0 - x[mask_channel] if mask_channel is not None else 1.0
        for c in channels:
            x[c] = fn(x[c]) * keep
        pair = pair.with_input(x)
    if target in ("output", "both"):
        pair = pair.with_output(fn(pair.output[0])[None])
    return pair
