"""Neuralizer: one network for many neuroimaging tasks, from a few examples at prediction time.

Names are imported on first use (PEP 562), so that ``neuralizer`` commands can check a user's
files and fail within a second, before torch is imported.
"""

__version__ = "0.1.0"

_LAZY = {
    "ModelConfig": "neuralizer.model",
    "Neuralizer": "neuralizer.model",
    "load": "neuralizer.model",
    "PredictResult": "neuralizer.infer",
    "predict": "neuralizer.infer",
    "predict_volume": "neuralizer.infer",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'neuralizer' has no attribute {name!r}")


__all__ = [*_LAZY, "__version__"]
