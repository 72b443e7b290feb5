"""neuralizer.tasks: the eight task families, the eight task augmentations, episodes and sampler.

See ``docs/img/tasks.png`` (``neuralizer data tasks -o FILE.png``) for a picture of each.
"""

from neuralizer.tasks.augmentations import AUGMENTATION_NAMES, TASK_AUGMENTATIONS
from neuralizer.tasks.base import Task, TaskSpace
from neuralizer.tasks.episode import Batch, Episode, EpisodeRecord, PairRecord, build_episode
from neuralizer.tasks.losses import (
    batch_loss,
    clamp_output,
    dice_score,
    episode_losses,
    mse_loss,
    psnr,
    soft_dice_loss,
)
from neuralizer.tasks.registry import TASK_NAMES, make_task
from neuralizer.tasks.sampler import (
    DEFAULT_AUGMENTATION_PROBABILITY,
    DEFAULT_TASK_WEIGHTS,
    EpisodeDataset,
    EpisodeSampler,
    HoldOut,
    SamplerConfig,
    replay,
)
from neuralizer.tasks.spatial import SpatialConfig, SpatialParams

__all__ = [
    "AUGMENTATION_NAMES",
    "DEFAULT_AUGMENTATION_PROBABILITY",
    "DEFAULT_TASK_WEIGHTS",
    "TASK_AUGMENTATIONS",
    "TASK_NAMES",
    "Batch",
    "Episode",
    "EpisodeDataset",
    "EpisodeRecord",
    "EpisodeSampler",
    "HoldOut",
    "PairRecord",
    "SamplerConfig",
    "SpatialConfig",
    "SpatialParams",
    "Task",
    "TaskSpace",
    "batch_loss",
    "build_episode",
    "clamp_output",
    "dice_score",
    "episode_losses",
    "make_task",
    "mse_loss",
    "psnr",
    "replay",
    "soft_dice_loss",
]
