"""The eight task families by name (paper Table 1) and the names the sampler and CLI use."""

from __future__ import annotations

from neuralizer.tasks.base import Task, TaskSpace
from neuralizer.tasks.denoising import Denoising
from neuralizer.tasks.inpainting import Inpainting
from neuralizer.tasks.modality_transfer import ModalityTransfer
from neuralizer.tasks.motion import MotionCorrection
from neuralizer.tasks.reconstruction import UndersampledReconstruction
from neuralizer.tasks.segmentation import BinarySegmentation
from neuralizer.tasks.skull_stripping import SkullStripping
from neuralizer.tasks.super_resolution import SuperResolution

TASK_FAMILIES: dict[str, type] = {
    cls.name: cls
    for cls in (
        BinarySegmentation,
        ModalityTransfer,
        SuperResolution,
        SkullStripping,
        MotionCorrection,
        UndersampledReconstruction,
        Denoising,
        Inpainting,
    )
}
TASK_NAMES: tuple[str, ...] = tuple(TASK_FAMILIES)


def make_task(name: str, space: TaskSpace) -> Task:
    """Build task family ``name`` (one of ``TASK_NAMES``) over ``space``."""
    if name not in TASK_FAMILIES:
        raise ValueError(f"unknown task {name!r}; choose one of {TASK_NAMES}")
    return TASK_FAMILIES[name](space)
