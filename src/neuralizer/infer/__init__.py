"""Prediction for real scans: 2D images and 3D NIfTI volumes in their native space (issue 7).

``predict`` (2D arrays), ``predict_volume`` (3D NIfTI) and their ``PredictResult``; imported on
first use so that the command line can check files before torch is loaded.
"""

_LAZY = {
    "PredictResult": "neuralizer.infer.api",
    "predict": "neuralizer.infer.api",
    "predict_volume": "neuralizer.infer.volume",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'neuralizer.infer' has no attribute {name!r}")


__all__ = list(_LAZY)
