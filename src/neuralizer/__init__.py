"""Neuralizer: one network for many neuroimaging tasks, from a few examples at prediction time."""

__version__ = "0.1.0"

from neuralizer.model import ModelConfig, Neuralizer, load  # noqa: E402


def __getattr__(name: str):
    """``neuralizer.predict``/``predict_volume``/``PredictResult``, imported on first use."""
    if name in ("predict", "predict_volume", "PredictResult"):
        import neuralizer.infer as infer

        return getattr(infer, name)
    raise AttributeError(f"module 'neuralizer' has no attribute {name!r}")


__all__ = [
    "ModelConfig",
    "Neuralizer",
    "PredictResult",
    "load",
    "predict",
    "predict_volume",
    "__version__",
]
