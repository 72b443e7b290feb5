"""Neuralizer: one network for many neuroimaging tasks, from a few examples at prediction time.

Names are imported on first use (PEP 562), so that ``neuralizer`` commands can check a user's
files and fail within a second, before torch is imported.
"""

__version__ = "0.1.0"

from neuralizer.lazy import lazy_names

_LAZY = {
    "ModelConfig": "neuralizer.model.config",
    "Neuralizer": "neuralizer.model.network",
    "load": "neuralizer.model.checkpoint",
    "PredictOptions": "neuralizer.infer",
    "PredictResult": "neuralizer.infer",
    "predict": "neuralizer.infer",
    "predict_volume": "neuralizer.infer",
}


__getattr__ = lazy_names("neuralizer", _LAZY)

__all__ = [*_LAZY, "__version__"]
