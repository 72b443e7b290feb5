"""The Neuralizer network, its fast inference path and checkpoints."""

from neuralizer.model.checkpoint import load, read_checkpoint, save_checkpoint
from neuralizer.model.network import ModelConfig, Neuralizer

__all__ = ["ModelConfig", "Neuralizer", "load", "read_checkpoint", "save_checkpoint"]
