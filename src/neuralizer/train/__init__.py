"""Training: ``train(cfg)`` on a CPU or, under torchrun, on many processes/GPUs."""

from neuralizer.train.config import TrainConfig
from neuralizer.train.loop import train

__all__ = ["TrainConfig", "train"]
