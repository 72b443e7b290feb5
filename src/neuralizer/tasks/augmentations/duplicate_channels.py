"""DuplicateChannels: an input channel is copied into unused (zero-padded) channels (SPEC §3)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neuralizer.tasks.augmentations.base import Pair, image_channels
from neuralizer.tasks.base import N_INPUT_CHANNELS, Task


@dataclass(frozen=True)
class DuplicateChannelsParams:
    source: int
    targets: tuple[int, ...]  # unused channels that receive a copy of ``source``


class DuplicateChannels:
    name = "duplicate_channels"

    def applies_to(self, task: Task) -> bool:
        return task.n_input_channels < N_INPUT_CHANNELS

    def sample(self, task: Task, rng: np.random.Generator) -> DuplicateChannelsParams:
        unused = list(range(task.n_input_channels, N_INPUT_CHANNELS))
        n = int(rng.integers(1, len(unused) + 1))
        targets = sorted(int(v) for v in rng.choice(unused, size=n, replace=False))
        return DuplicateChannelsParams(
            source=int(rng.choice(image_channels(task))), targets=tuple(targets)
        )

    def apply(self, pair: Pair, params: DuplicateChannelsParams) -> Pair:
        x = pair.input.copy()
        x[list(params.targets)] = x[params.source]
        return pair.with_input(x)
