"""How to predict, and the checked plan of one prediction, without torch (so bad input fails
within a second, before any model is loaded).

:class:`PredictOptions` holds the choices of ``neuralizer predict`` (and of ``predict`` /
``predict_volume``), checked when it is made. :func:`plan_prediction` checks a target against its
context once and returns a :class:`PredictPlan`, which ``predict`` and ``predict_volume`` accept
as it is, so no check runs twice.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from neuralizer.infer.checks import (
    as_loaded,
    channels_2d,
    check_context,
    choose_alignment,
    validate_volumes,
)
from neuralizer.infer.io import Loaded, read_input
from neuralizer.infer.outputs import TASKS, OutputPlan, plan_outputs
from neuralizer.infer.paths import Spec, expand

#: Slice directions of a volume; "all": the three in turn, coronal first, their maps averaged.
AXES = {"sagittal": 0, "coronal": 1, "axial": 2}
ALL_VIEWS = ("coronal", "axial", "sagittal")
VIEWS = (*AXES, "all")
DEVICES = ("auto", "cpu", "cuda")
#: adaptation steps K of ``--adapt`` alone and ``adapt=True`` (chosen on the validation split:
#: scripts/adapt_defaults.py, docs/adapt.md)
DEFAULT_ADAPT_STEPS = 100


def _positive_int(value: Any, what: str) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not float(value).is_integer()
        or value < 1
    ):
        raise ValueError(f"{what} must be a whole number of at least 1, got {value!r}")
    return int(value)


def parse_labels(values: Sequence[str | int] | str | None) -> tuple[int, ...] | str | None:
    """Label values to segment (``--labels 17 53``), "all", or None; ValueError otherwise."""
    if values is None or isinstance(values, str):
        if isinstance(values, str) and values != "all":
            raise ValueError(f"labels must be a list of integers or 'all', got {values!r}")
        return values
    values = list(values)
    if values == ["all"]:
        return "all"
    try:
        return tuple(int(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(
            f"--labels takes integers or 'all', got {' '.join(map(str, values))}"
        ) from None


@dataclass(frozen=True)
class PredictOptions:
    """How to predict: everything but the files and the model, checked when made.

    ``task`` "auto", "segmentation" or "image"; ``labels`` label values (or "all") to segment
    from label maps; ``ensemble`` K bootstrap passes; ``axis`` slice direction of volumes (or
    "all"); ``align`` "affine", "deformable" or "none" (checked with the volumes: 2D images are
    never aligned); ``spacing`` pixel size (mm) of 2D images (None: 1 mm);
    ``seed`` of the ensemble's draws and the registration; ``device`` "auto", "cpu" or "cuda";
    ``batch_size`` slices per forward pass; ``max_memory`` bytes (or "8G", "inf") one forward
    pass may use, None: the memory available when the model is about to run; ``adapt`` K > 0:
    first fine-tune a copy of the model for K steps on the context pairs (2 or more;
    ``neuralizer.infer.adapt``), True: the default K, 0: none.
    """

    task: str = "auto"
    labels: tuple[int, ...] | str | None = None
    ensemble: int = 1
    axis: str = "coronal"
    align: str = "affine"
    spacing: float | None = None
    seed: int = 0
    device: str = "auto"
    batch_size: int = 8
    max_memory: float | str | None = None
    adapt: int = 0

    def __post_init__(self) -> None:
        from neuralizer.model.limits import parse_memory  # torch-free

        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; choose one of {TASKS}")
        if self.axis not in VIEWS:
            raise ValueError(f"unknown axis {self.axis!r}; choose one of {VIEWS}")
        if self.spacing is not None and not self.spacing > 0:
            raise ValueError(
                f"spacing (--spacing) must be a positive number of mm, got {self.spacing}"
            )
        device = str(self.device)
        if device not in DEVICES and not device.startswith("cuda:"):
            raise ValueError(f"unknown device {self.device!r}; choose auto, cpu or cuda")
        object.__setattr__(self, "labels", parse_labels(self.labels))
        ensemble = _positive_int(self.ensemble, "ensemble (--ensemble)")
        object.__setattr__(self, "ensemble", ensemble)
        batch_size = _positive_int(self.batch_size, "the batch size (--batch-size)")
        object.__setattr__(self, "batch_size", batch_size)
        object.__setattr__(self, "seed", int(self.seed))
        adapt = DEFAULT_ADAPT_STEPS if self.adapt is True else self.adapt
        if (
            isinstance(adapt, bool)
            or not isinstance(adapt, numbers.Real)
            or not float(adapt).is_integer()
            or adapt < 0
        ):
            raise ValueError(
                f"adapt (--adapt) is a number of steps, 0 (none) or more, got {adapt!r}"
            )
        object.__setattr__(self, "adapt", int(adapt))
        # an unreadable size fails here, before any file is read
        object.__setattr__(self, "max_memory", parse_memory(self.max_memory))


@dataclass(frozen=True)
class Context:
    """The loaded example pairs (2D: arrays; 3D: volumes) and what their outputs ask for."""

    context_in: list[Loaded]
    context_out: list[Loaded]
    volumetric: bool
    outputs: OutputPlan


@dataclass(frozen=True)
class PredictPlan:
    """One checked prediction: the target, its context, what to predict and how.

    2D: ``target`` holds C×H×W, the context L pairs of C×H×W and 1×H×W (no NIfTI image);
    3D: NIfTI volumes. Made by :func:`plan_prediction`; ``predict``/``predict_volume`` take it.
    """

    target: Loaded
    context_in: tuple[Loaded, ...]
    context_out: tuple[Loaded, ...]
    outputs: OutputPlan
    options: PredictOptions

    @property
    def volumetric(self) -> bool:
        return self.target.image is not None


def load_context(
    options: PredictOptions,
    context_in: Sequence[Spec] = (),
    context_out: Sequence[Spec] = (),
    *,
    preset: str | None = None,
    n_context: int = 4,
) -> Context:
    """Read and check the examples (files, globs allowed, or a preset); no model is touched."""
    if preset:
        if context_in or context_out:
            raise ValueError("give either --preset or --context-in/--context-out, not both")
        from neuralizer.infer.presets import preset_context

        c_in, c_out = preset_context(preset, n_context)
        volumetric = True
    else:
        from neuralizer.infer.resources import check_input_files

        context_in, context_out = expand(context_in), expand(context_out)
        check_input_files([*context_in, *context_out], options.max_memory, "the context")
        c_in = [read_input(p) for p in context_in]
        c_out = [read_input(p) for p in context_out]
        check_context(len(c_in), len(c_out))
        kinds = {c.image is not None for c in c_in + c_out}
        if len(kinds) > 1:
            raise ValueError("the context mixes NIfTI volumes and 2D files; use one kind")
        volumetric = kinds.pop()
    outputs = plan_outputs(options.task, options.labels, [c.data for c in c_out])
    return Context(c_in, c_out, volumetric, outputs)


def plan_prediction(target: Loaded, context: Context, options: PredictOptions) -> PredictPlan:
    """Every check of ``target`` against ``context`` that needs no model, once."""
    if (target.image is not None) != context.volumetric:
        raise ValueError(
            f"{target.name} is {'a volume' if target.image is not None else '2D'} but the context "
            f"is {'volumes' if context.volumetric else '2D'}; give the same kind"
        )
    c_in, c_out = context.context_in, context.context_out
    if context.volumetric:
        validate_volumes(target, c_in, c_out, options.align)
        choose_alignment(options.align)
        return PredictPlan(target, tuple(c_in), tuple(c_out), context.outputs, options)
    x, xs, ys = channels_2d(target.data, [c.data for c in c_in], [c.data for c in c_out])
    return PredictPlan(
        Loaded(target.name, x),
        tuple(Loaded(c.name, a) for c, a in zip(c_in, xs, strict=True)),
        tuple(Loaded(c.name, b) for c, b in zip(c_out, ys, strict=True)),
        context.outputs,
        options,
    )


def plan_arrays(
    target_in: Any, context_in: Sequence[Any], context_out: Sequence[Any], options: PredictOptions
) -> PredictPlan:
    """The plan of a 2D prediction from arrays or tensors (``neuralizer.predict``)."""
    x, xs, ys = channels_2d(target_in, context_in, context_out)
    outputs = plan_outputs(options.task, options.labels, list(ys))
    return PredictPlan(
        Loaded("target_in", x),
        tuple(Loaded(f"context_in[{i}]", a) for i, a in enumerate(xs)),
        tuple(Loaded(f"context_out[{i}]", b) for i, b in enumerate(ys)),
        outputs,
        options,
    )


def plan_volumes(
    target: Any, context_in: Sequence[Any], context_out: Sequence[Any], options: PredictOptions
) -> PredictPlan:
    """The plan of a 3D prediction from NIfTI paths or images (``neuralizer.predict_volume``)."""
    target_l = as_loaded(target, "target")
    c_in = [as_loaded(c, f"context_in[{i}]") for i, c in enumerate(context_in)]
    c_out = [as_loaded(c, f"context_out[{i}]") for i, c in enumerate(context_out)]
    validate_volumes(target_l, c_in, c_out, options.align)
    outputs = plan_outputs(options.task, options.labels, [c.data for c in c_out])
    choose_alignment(options.align)
    return PredictPlan(target_l, tuple(c_in), tuple(c_out), outputs, options)


def plan_given(
    first: Any,
    context_in: Sequence[Any] | None,
    context_out: Sequence[Any] | None,
    options: dict[str, Any],
    make: Callable[..., PredictPlan],
) -> PredictPlan:
    """``first`` if it is a plan already (then alone), else ``make``'s plan of the data and
    ``options`` (the keyword arguments of ``predict``/``predict_volume``)."""
    if isinstance(first, PredictPlan):
        if context_in is not None or context_out is not None:
            raise ValueError("a PredictPlan holds its context: give the plan alone")
        return first
    if context_in is None or context_out is None:
        raise ValueError("give context_in and context_out (or a PredictPlan)")
    return make(first, context_in, context_out, PredictOptions(**options))
