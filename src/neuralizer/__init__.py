"""Neuralizer: one network for many neuroimaging tasks, from a few examples at prediction time."""

__version__ = "0.1.0"
