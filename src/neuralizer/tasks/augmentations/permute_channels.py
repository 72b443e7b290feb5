"""PermuteChannels: the three input channels are permuted (SPEC §3): ``new[i] = old[perm[i]]``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neuralizer.tasks.augmentations.base import Pair
from neuralizer.tasks.base import N_INPUT_CHANNELS, Task


@dataclass(frozen=True)
class PermuteChannelsParams:
    perm: tuple[int, ...]


class PermuteChannels:
    name = "permute_channels"

    def applies_to(self, task: Task) -> bool:
        return True

    def sample(self, task: Task, rng: np.random.Generator) -> PermuteChannelsParams:
        perm = rng.permutation(N_INPUT_CHANNELS)
        while (perm == np.arange(N_INPUT_CHANNELS)).all():
            perm = rng.permutation(N_INPUT_CHANNELS)
        return PermuteChannelsParams(perm=tuple(int(v) for v in perm))

    def apply(self, pair: Pair, params: PermuteChannelsParams) -> Pair:
        return pair.with_input(pair.input[list(params.perm)])
