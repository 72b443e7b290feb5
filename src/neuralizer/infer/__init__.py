"""Prediction for real scans: 2D images and 3D NIfTI volumes in their native space (issue 7).

``predict`` (2D arrays), ``predict_volume`` (3D NIfTI), their ``PredictResult``, and the
``PredictOptions``/``PredictPlan`` they accept; imported on first use so that the command line can
check files before torch is loaded.
"""

from neuralizer.lazy import lazy_names

_LAZY = {
    "PredictOptions": "neuralizer.infer.plan",
    "PredictPlan": "neuralizer.infer.plan",
    "PredictResult": "neuralizer.infer.engine",
    "predict": "neuralizer.infer.api",
    "predict_volume": "neuralizer.infer.volume",
}


__getattr__ = lazy_names("neuralizer.infer", _LAZY)

__all__ = list(_LAZY)
