"""Adapt to the examples (``--adapt K``): fine-tune a copy of the model on the context pairs.

Beyond the paper. Pure in-context inference spends one forward pass on the examples; with more
than a few pairs, a task-specific network trained on them wins (experiment 1). Adaptation starts
from the meta-trained weights and takes K Adam steps on episodes made of the context pairs
themselves; the prediction then runs with the adapted copy and every pair as context.

An episode (one per batch item) holds one context pair as its target and a random subset of the
others as its context, all at one *position*: the one 2D image, or for volumes one slice of the
working grid, where every volume's slice at that position is a pair (as the prediction pairs
them). Each pair, target included, gets its own training-time spatial augmentation
(:mod:`neuralizer.tasks.spatial`: rotation, scale, shear, translation, elastic) without the
left-right flip, since a user's mask of one hemisphere's structure has no mirrored name to swap
to. The loss is training's (:func:`~neuralizer.tasks.losses.episode_losses`): soft Dice for mask
outputs (segmentation, each label of a label map), 10 × MSE for images.

The loaded model is never modified (a deep copy moves), and a run is a pure function of the
seed: episodes come from a NumPy generator seeded with it.
"""

from __future__ import annotations

import copy
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from neuralizer.infer.engine import pad_channels
from neuralizer.infer.ensemble import pad_to_multiple
from neuralizer.model.guards import check_pass_memory
from neuralizer.model.network import Neuralizer
from neuralizer.tasks.losses import episode_losses
from neuralizer.tasks.spatial import SpatialConfig, Warper, sample_spatial, source_coordinates

#: which parameters adaptation moves: every weight, or the decoder half (up-sampling fusions,
#: decoder blocks, output unit and convolution), the encoder kept as meta-trained
PARAMETER_SETS = ("all", "decoder")
#: the defaults, chosen on the validation split (scripts/adapt_defaults.py, docs/adapt.md)
DEFAULT_LR = 1e-4
DEFAULT_PARAMETERS = "decoder"
DEFAULT_BATCH = 2
#: largest context of an adaptation episode (the shipped model was trained with 1 to 8 pairs)
MAX_EPISODE_CONTEXT = 7
#: the spatial augmentation of training, without the flip (module doc)
ADAPT_SPATIAL = SpatialConfig(p_flip=0.0)


@dataclass(frozen=True)
class AdaptConfig:
    """K ``steps`` of Adam at ``lr`` on ``batch`` episodes each, moving ``parameters``;
    ``max_context``: largest context of an episode; ``seed``: the episodes' draws."""

    steps: int
    lr: float = DEFAULT_LR
    parameters: str = DEFAULT_PARAMETERS
    batch: int = DEFAULT_BATCH
    max_context: int = MAX_EPISODE_CONTEXT
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "batch", "max_context"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"adaptation {name} must be a whole number ≥ 1, got {value!r}")
        if not self.lr > 0:
            raise ValueError(f"the adaptation learning rate must be positive, got {self.lr!r}")
        if self.parameters not in PARAMETER_SETS:
            raise ValueError(
                f"unknown adaptation parameters {self.parameters!r}; choose {PARAMETER_SETS}"
            )


@dataclass(frozen=True)
class Adapted:
    """The adapted copy, and what it took (``seconds``; ``note`` one line for logs)."""

    model: Neuralizer
    seconds: float
    note: str


def moving_parameters(model: Neuralizer, which: str) -> list[torch.nn.Parameter]:
    """The parameters adaptation trains (``which`` in :data:`PARAMETER_SETS`)."""
    if which == "all":
        return list(model.parameters())
    parts = (model.up, model.decoder, model.out_res, model.out_conv)
    return [p for part in parts for p in part.parameters()]


def check_adapt_memory(
    model: Neuralizer,
    config: AdaptConfig,
    n_pairs: int,
    size: tuple[int, int],
    max_memory: float | None,
) -> None:
    """MemoryLimitError, before any work, if one training step of adaptation (autograd keeps
    every intermediate) on ``n_pairs`` pairs of ``size`` H×W would exceed ``max_memory``."""
    multiple = model.config.size_multiple
    height, width = (-(-s // multiple) * multiple for s in size)
    n_context = min(config.max_context, max(n_pairs - 1, 1))
    what = (
        f"adaptation step ({config.batch} episode(s) of {height}×{width} with up to "
        f"{n_context} context pairs, with gradients)"
    )
    check_pass_memory(
        model.config, config.batch, n_context, (height, width), "grad", max_memory, what
    )


def _warp_pair(
    image: np.ndarray, target: np.ndarray, discrete: bool, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One pair (C×H×W input, 1×H×W output in [0, 1]) moved by one drawn spatial transform:
    inputs bilinearly, mask outputs by nearest neighbour, image outputs bilinearly."""
    shape = image.shape[-2:]
    params = sample_spatial(shape, ADAPT_SPATIAL, rng)
    if params.is_identity:
        return image, target
    warper = Warper(source_coordinates(shape, params), shape)
    moved_in = np.stack([warper(c) for c in image])
    if discrete:
        moved_out = warper((target[0] >= 0.5).astype(np.uint8)).astype(np.float32)[None]
    else:
        moved_out = warper(target[0])[None]
    return moved_in, moved_out


def _episodes(
    pairs_in: np.ndarray,
    maps: Sequence[np.ndarray],
    positions: np.ndarray,
    discrete: bool,
    config: AdaptConfig,
    rng: np.random.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step's batch: target input B×C×H×W and output B×1×H×W, context B×S×C×H×W and
    B×S×1×H×W (S the step's context size, drawn from 1 .. min(L − 1, max_context))."""
    n_pairs = pairs_in.shape[1]
    size = int(rng.integers(1, min(n_pairs - 1, config.max_context) + 1))
    x, y, c_in, c_out = [], [], [], []
    for _ in range(config.batch):
        where = int(positions[rng.integers(len(positions))])
        outputs = maps[int(rng.integers(len(maps)))]
        order = rng.permutation(n_pairs)
        chosen = [_warp_pair(pairs_in[where, i], outputs[where, i], discrete, rng)
                  for i in order[: size + 1]]  # fmt: skip
        x.append(chosen[0][0])
        y.append(chosen[0][1])
        c_in.append(np.stack([a for a, _ in chosen[1:]]))
        c_out.append(np.stack([b for _, b in chosen[1:]]))
    return tuple(torch.from_numpy(np.ascontiguousarray(np.stack(v), np.float32))
                 for v in (x, y, c_in, c_out))  # type: ignore[return-value]  # fmt: skip


def adapt_model(
    model: Neuralizer,
    pairs_in: np.ndarray,
    maps: Sequence[np.ndarray],
    discrete: bool,
    config: AdaptConfig,
    *,
    positions: np.ndarray | None = None,
    progress: bool = False,
    on_step: Callable[[int, Neuralizer], None] | None = None,
) -> Adapted:
    """An adapted deep copy of ``model`` (``model`` itself is not touched).

    ``pairs_in`` N×L×C×H×W: the context inputs, rescaled to [0, 1], at N positions (one for 2D
    images, the working grid's slices for volumes); ``maps``: one N×L×1×H×W array in [0, 1] per
    map to predict (the one output, or each label of a label map); ``discrete``: masks (soft
    Dice) or images (MSE). ``positions``: the positions episodes draw from (default: all).
    The caller checks the memory first (:func:`check_adapt_memory`) and that L ≥ 2.
    ``on_step(k, net)`` is called after step k (measurements of K: scripts/adapt_defaults.py).
    """
    n_pairs = pairs_in.shape[1]
    if n_pairs < 2:
        raise ValueError("adaptation needs at least 2 context pairs (one target, one context)")
    start = time.perf_counter()
    with torch.inference_mode(False), torch.enable_grad():
        net = _train(model, pairs_in, maps, discrete, config, positions, progress, on_step)
    net.eval().requires_grad_(False)
    seconds = time.perf_counter() - start
    note = (
        f"adapted a copy of the model to the {n_pairs} example pairs: {config.steps} steps "
        f"({config.parameters} weights, lr {config.lr:g}) in {seconds:.1f} s"
    )
    return Adapted(net, seconds, note)


def _train(model, pairs_in, maps, discrete, config, positions, progress, on_step) -> Neuralizer:
    """The adaptation loop of :func:`adapt_model` (with autograd on)."""
    from tqdm.auto import tqdm

    device = next(model.parameters()).device
    net = copy.deepcopy(model).train()
    moving = moving_parameters(net, config.parameters)
    ids = {id(p) for p in moving}
    for p in net.parameters():
        p.requires_grad_(id(p) in ids)
    optimizer = torch.optim.Adam(moving, lr=config.lr)
    rng = np.random.default_rng([0x5ADA97, config.seed])
    where = np.arange(len(pairs_in)) if positions is None else np.asarray(positions)
    channels, multiple = net.config.in_channels, net.config.size_multiple
    seg = torch.full((config.batch,), discrete)
    bar = tqdm(range(config.steps), unit="step", desc="adapting", disable=not progress,
               leave=False, file=sys.stderr)  # fmt: skip
    for step in bar:
        x, y, c_in, c_out = _episodes(pairs_in, maps, where, discrete, config, rng)
        x, c_in = pad_channels(x, channels), pad_channels(c_in, channels)
        (x, (h, w)), (c_in, _), (c_out, _) = (
            pad_to_multiple(t, multiple) for t in (x, c_in, c_out)
        )
        raw = net(x.to(device), c_in.to(device), c_out.to(device), split=True,
                  max_memory=float("inf"))[..., :h, :w]  # fmt: skip
        loss = episode_losses(raw, y.to(device), seg).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if on_step is not None:
            on_step(step + 1, net)
    bar.close()
    return net


#: the note of an adaptation asked for with a single example pair
ONE_PAIR = "adaptation needs at least 2 example pairs: predicted with the model as it is"


def plan_adaptation(
    model: Neuralizer, options, n_pairs: int, size: tuple[int, int]
) -> AdaptConfig | None:
    """The :class:`AdaptConfig` a prediction's ``options`` ask for (None: no adaptation, or one
    pair only), its memory checked for pairs of ``size`` H×W before any work."""
    if not options.adapt or n_pairs < 2:
        return None
    config = AdaptConfig(steps=options.adapt, seed=options.seed)
    check_adapt_memory(model, config, n_pairs, size, options.max_memory)
    return config


def adaptation_steps(options, n_pairs: int, adapted: Adapted | None) -> tuple[str, ...]:
    """What a prediction's steps say about adaptation (nothing when none was asked for)."""
    if adapted is not None:
        return (adapted.note,)
    if options.adapt and n_pairs < 2:
        return (ONE_PAIR,)
    return ()
