"""Neuralizer: one network for many neuroimaging tasks, from a few examples at prediction time."""

__version__ = "0.1.0"

from neuralizer.model import ModelConfig, Neuralizer, load  # noqa: E402

__all__ = ["ModelConfig", "Neuralizer", "load", "__version__"]
