"""What the context outputs ask for, and how model outputs become the user's result.

Three kinds of task:
- "segmentation": binary context outputs; the result is a uint8 mask (probability ≥ 0.5);
- "labels": integer label-map context outputs and a list of label values; each label is segmented
  one-vs-rest and the probabilities are combined by arg-max into one label map that keeps the
  original values (0 where no label reaches 0.5);
- "image": anything else; every context output is rescaled by its own percentile range, and the
  prediction is mapped back to the mean of those ranges (the examples define the output's scale).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from neuralizer.data.space import intensity_range, rescale

TASKS = ("auto", "segmentation", "image")


def is_blank(image: np.ndarray) -> bool:
    return bool(image.size == 0 or image.max() == image.min())


@dataclass(frozen=True)
class OutputPlan:
    """How context outputs map to model output channels and back.

    ``kind`` is "segmentation", "labels" or "image"; ``label_values`` the labels segmented (for
    "labels"); ``scale`` the (lo, hi) the image prediction is mapped back to (for "image").
    """

    kind: str
    label_values: tuple[int, ...] = ()
    scale: tuple[float, float] = (0.0, 1.0)

    @property
    def n_maps(self) -> int:
        return len(self.label_values) if self.kind == "labels" else 1

    def targets(self, context_out: np.ndarray) -> list[np.ndarray]:
        """Model-ready context outputs (each L×1×…, float32 in [0, 1]) for every map to predict.

        ``context_out`` is L×1×(spatial) in the user's values.
        """
        if self.kind == "labels":
            return [(context_out == v).astype(np.float32) for v in self.label_values]
        if self.kind == "segmentation":
            return [(context_out > 0.5).astype(np.float32)]
        return [np.stack([rescale(c, *intensity_range(c)) for c in context_out])]

    def finish(
        self, maps: np.ndarray, spread: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(result, uncertainty, probabilities) from M×(spatial) model maps and their s.d.

        Segmentation: uint8 mask, s.d., probabilities. Labels: uint8/int16/int32 label map, s.d.
        of the winning label, M×… probabilities. Image: float32 in the context outputs' scale.
        """
        if self.kind == "image":
            lo, hi = self.scale
            result = (maps[0] * (hi - lo) + lo).astype(np.float32)
            return (
                result,
                None if spread is None else (spread[0] * (hi - lo)).astype(np.float32),
                None,
            )
        if self.kind == "segmentation":
            uncertainty = None if spread is None else spread[0].astype(np.float32)
            return (maps[0] >= 0.5).astype(np.uint8), uncertainty, maps[0].astype(np.float32)
        best = maps.argmax(axis=0)
        values = np.asarray(self.label_values)
        dtype = label_dtype(values)
        result = np.where(maps.max(axis=0) >= 0.5, values[best], 0).astype(dtype)
        uncertainty = None
        if spread is not None:
            uncertainty = np.take_along_axis(spread, best[None], axis=0)[0].astype(np.float32)
        return result, uncertainty, maps.astype(np.float32)


def label_dtype(values: np.ndarray) -> type:
    """The smallest of uint8/int16/int32 that holds every label value."""
    lo, hi = (int(values.min()), int(values.max())) if values.size else (0, 0)
    if lo >= 0 and hi <= 255:
        return np.uint8
    if -32768 <= lo and hi <= 32767:
        return np.int16
    return np.int32


def plan_outputs(
    task: str, labels: Sequence[int] | str | None, context_out: Sequence[np.ndarray]
) -> OutputPlan:
    """Decide the task from the context outputs (each 1×(spatial), the user's values).

    Raises ValueError for non-binary outputs when segmentation is asked, non-integer label maps,
    or labels absent from every context output.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {TASKS}")
    if not context_out:
        raise ValueError("the context is empty: give at least one input/output pair")
    values = np.unique(np.concatenate([np.unique(c) for c in context_out]))
    binary = bool(np.isin(values, (0.0, 1.0)).all())
    if labels is not None:
        if task == "image":
            raise ValueError("--labels segments label maps: it cannot be combined with task image")
        if not np.array_equal(values, np.round(values)):
            raise ValueError("--labels needs integer label maps as context outputs")
        present = [int(v) for v in values if v != 0]
        if isinstance(labels, str):
            if labels != "all":
                raise ValueError(f"labels must be a list of integers or 'all', got {labels!r}")
            chosen = present
        else:
            chosen = sorted({int(v) for v in labels})
            missing = sorted(set(chosen) - set(present))
            if missing:
                raise ValueError(f"label(s) {missing} occur in no context output")
        if not chosen:
            raise ValueError("the context outputs hold no non-zero label to segment")
        return OutputPlan("labels", tuple(chosen))
    if task == "segmentation" and not binary:
        shown = ", ".join(f"{v:g}" for v in values[:6]) + (", …" if values.size > 6 else "")
        raise ValueError(
            f"task segmentation needs binary (0/1) context outputs, found values {shown}; "
            "for a label map give --labels VALUES or --labels all"
        )
    if task == "segmentation" or (task == "auto" and binary):
        return OutputPlan("segmentation")
    ranges = np.array([intensity_range(c) for c in context_out])
    return OutputPlan("image", scale=(float(ranges[:, 0].mean()), float(ranges[:, 1].mean())))
