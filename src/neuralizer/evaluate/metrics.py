"""Scores of predictions (paper §4.4, SPEC §7), from the training code's own metric functions.

Dice (threshold 0.5) for segmentation-like tasks, PSNR (max value 1) for the rest; raw outputs
are clamped to [0, 1] first with :func:`neuralizer.model.output.clamp_output`, as in training.
"""

from __future__ import annotations

import numpy as np
import torch

from neuralizer.model.output import clamp_output
from neuralizer.tasks.losses import dice_score, psnr


def metric_name(segmentation_like: bool) -> str:
    return "dice" if segmentation_like else "psnr"


def score(raw_pred, target, segmentation_like: bool) -> np.ndarray:
    """Per-item Dice or PSNR of raw predictions: T×1×H×W (numpy or torch) -> T float64."""
    pred = clamp_output(torch.as_tensor(np.ascontiguousarray(raw_pred, np.float32)))
    target = torch.as_tensor(np.ascontiguousarray(target, np.float32))
    metric = dice_score if segmentation_like else psnr
    return metric(pred, target).numpy().astype(np.float64)


def dice(pred, truth) -> float:
    """Dice (threshold 0.5) of one mask of any shape — a slice or a whole volume."""
    pred, truth = (np.asarray(a, np.float32)[None, None] for a in (pred, truth))
    return float(score(pred, truth, segmentation_like=True)[0])
