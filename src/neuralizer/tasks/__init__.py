"""neuralizer.tasks: the eight task families, the eight task augmentations, episodes and sampler.

See ``docs/img/tasks.png`` (``neuralizer data tasks -o FILE.png``) for a picture of each.

Names are imported on first use (PEP 562), so that importing one submodule (e.g. the command-line
wiring in ``neuralizer.tasks.cli``) does not import torch and every task family.
"""

_LAZY = {
    "AUGMENTATION_NAMES": "neuralizer.tasks.augmentations",
    "TASK_AUGMENTATIONS": "neuralizer.tasks.augmentations",
    "Task": "neuralizer.tasks.base",
    "TaskSpace": "neuralizer.tasks.base",
    "Batch": "neuralizer.tasks.episode",
    "Episode": "neuralizer.tasks.episode",
    "EpisodeRecord": "neuralizer.tasks.episode",
    "PairRecord": "neuralizer.tasks.episode",
    "build_episode": "neuralizer.tasks.episode",
    "batch_loss": "neuralizer.tasks.losses",
    "clamp_output": "neuralizer.tasks.losses",
    "dice_score": "neuralizer.tasks.losses",
    "episode_losses": "neuralizer.tasks.losses",
    "mse_loss": "neuralizer.tasks.losses",
    "psnr": "neuralizer.tasks.losses",
    "soft_dice_loss": "neuralizer.tasks.losses",
    "TASK_NAMES": "neuralizer.tasks.registry",
    "make_task": "neuralizer.tasks.registry",
    "DEFAULT_AUGMENTATION_PROBABILITY": "neuralizer.tasks.sampler",
    "DEFAULT_TASK_WEIGHTS": "neuralizer.tasks.sampler",
    "EpisodeDataset": "neuralizer.tasks.sampler",
    "EpisodeSampler": "neuralizer.tasks.sampler",
    "HoldOut": "neuralizer.tasks.sampler",
    "SamplerConfig": "neuralizer.tasks.sampler",
    "replay": "neuralizer.tasks.sampler",
    "SpatialConfig": "neuralizer.tasks.spatial",
    "SpatialParams": "neuralizer.tasks.spatial",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'neuralizer.tasks' has no attribute {name!r}")


__all__ = sorted(_LAZY)
