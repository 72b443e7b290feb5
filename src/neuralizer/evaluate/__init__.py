"""neuralizer.evaluate: evaluation sets, metrics, baselines, experiments and the results page.

``neuralizer evaluate CONFIG...`` runs configurations (``configs/eval/*.json``);
``python -m neuralizer.evaluate.report`` turns the results CSVs into ``docs/results.md``.
"""

from neuralizer.evaluate.baselines import (
    fuse,
    identity_baseline,
    mean_baseline,
    propagate,
    register_deformable,
)
from neuralizer.evaluate.config import EvalConfig, UNetBudget
from neuralizer.evaluate.metrics import score
from neuralizer.evaluate.run import run
from neuralizer.evaluate.sets import Instance, build_instances
from neuralizer.evaluate.unet import UNet, train_unet

__all__ = [
    "EvalConfig",
    "Instance",
    "UNet",
    "UNetBudget",
    "build_instances",
    "fuse",
    "identity_baseline",
    "mean_baseline",
    "propagate",
    "register_deformable",
    "run",
    "score",
    "train_unet",
]
