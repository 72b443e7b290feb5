"""Prediction for real scans: 2D images and 3D NIfTI volumes in their native space (issue 7)."""

from neuralizer.infer.api import PredictResult, predict
from neuralizer.infer.volume import predict_volume

__all__ = ["PredictResult", "predict", "predict_volume"]
