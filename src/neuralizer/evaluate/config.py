"""Evaluation configurations (one JSON file per experiment; paper §4.4–4.7, SPEC §7).

A configuration fixes everything an evaluation draws: the data (test split, and where the context
or training pairs come from), the task instances, the methods and the context sizes, so that a
rerun produces exactly the same rows (and a resumed run the same rows as an uninterrupted one).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from neuralizer.data.make import FLAT_SOURCE_FIELDS, SourceConfig
from neuralizer.jsonconfig import JsonConfig
from neuralizer.tasks.registry import TASK_NAMES

#: methods that need no trained model besides the Neuralizer checkpoints in ``models``
BASELINES = ("mean", "identity", "atlas", "atlas-affine", "unet")
#: ``neuralizer-adapt<K>``: every model of ``models`` adapted for K steps to the context pairs
ADAPT_METHOD = re.compile(r"neuralizer-adapt([1-9][0-9]*)")
#: how the pairs of an evaluation set are made (see :mod:`neuralizer.evaluate.sets`)
EPISODE_KINDS = ("evaluation", "training")
#: tissue-level binary structures that segmentation instances can add (``structures``)
STRUCTURE_NAMES = ("brain_mask", "white_matter", "grey_matter")


@dataclass(frozen=True)
class UNetBudget:
    """Training of the task-specific U-Nets ("Baseline-seen", paper §4.5), scaled to a CPU.

    Each U-Net trains for exactly ``steps`` Adam steps of ``batch_size`` pairs (a fixed budget:
    no early stopping), drawn from its first n training pairs; ``train_sizes`` are the n.
    """

    train_sizes: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 512)
    steps: int = 2000
    batch_size: int = 8
    channels: int = 16
    stages: int = 4
    lr: float = 1e-3
    checkpoint_every: int = 100
    run_dir: str = "runs/unet"
    threads: int = 2


@dataclass(frozen=True)
class EvalConfig(JsonConfig):
    """One experiment.

    - ``source`` (:class:`~neuralizer.data.make.SourceConfig`; flat files' ``data``,
      ``voxel_size_mm``, ``axis``, ``phantom_size`` and ``protocols`` load into it): kind
      "synth" (test split of the synthesised subjects; ``protocols``: synthesis protocols of the
      test split, empty: the training protocols; experiment 3 lists the held-out atlases),
      "people" (real anatomy: targets are the test people, context pairs come from the 15
      training and validation people, ``pool_split`` "train" only), "dataset" (a folder of
      ``neuralizer data import``: targets and a "test" pool from ``val_path`` or ``path``, a
      "train" pool from ``path``) or "phantom" (tests only). One kind at a time: no
      ``people_fraction``.
    - Targets are test subjects ``0 .. n_targets-1``. Context/training pairs ("the pool",
      ``pool_size`` pairs) come from test subjects after the targets (``pool_split`` "test") or
      from the training split (``pool_split`` "train", subjects cycled when the pool is larger).
    - ``tasks`` × ``instances_per_task`` task instances; an instance fixes every episode-level
      choice (label, modalities, corruption level, ...) and the slice position.
    - ``per_class`` > 0 (segmentation only): each drawn segmentation instance becomes
      ``per_class`` instances, one per largest label of the target slice (the paper's Table 3),
      of the drawn protocol or of ``class_protocol`` if set. ``structures`` (names of
      :data:`STRUCTURE_NAMES`) adds one instance per tissue-level structure of the same slice.
    - ``episodes``: "evaluation" (identity spatial transforms) or "training" (each pair with its
      own spatial augmentation, as in training; see :mod:`neuralizer.evaluate.sets`).
    - ``methods``: "neuralizer" (every model of ``models``, label -> checkpoint), "mean",
      "identity" (image tasks only), "atlas" (affine + B-spline), "atlas-affine" (the affine
      stage alone), "unet", "neuralizer-adapt<K>" (``<label>-adapt<K>`` rows: each model
      adapted for K steps to the n context pairs, :mod:`neuralizer.infer.adapt`). ``ensemble``
      > 0 adds ``<label>-ens<K>`` rows: K context bootstraps.
    - ``target_split``: where the targets come from, "test" (every experiment) or "val" (the
      measurements that choose defaults, which must never see the test subjects).
    - ``holdout_*``: evaluate only held-out items (what a Neuralizer-unseen model never saw).
    """

    FLAT = FLAT_SOURCE_FIELDS
    WHAT = "evaluation config"

    name: str
    output: str
    tasks: tuple[str, ...]
    source: SourceConfig = SourceConfig(phantom_size=64)
    n_targets: int = 8
    pool_split: str = "test"
    pool_size: int = 32
    n_train_subjects: int = 100
    instances_per_task: int = 2
    per_class: int = 0
    class_protocol: str = ""
    structures: tuple[str, ...] = ()
    episodes: str = "evaluation"
    context_sizes: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    methods: tuple[str, ...] = ("neuralizer", "mean", "atlas")
    models: Mapping[str, str] = field(default_factory=dict)
    ensemble: int = 0
    holdout_tasks: tuple[str, ...] = ()
    holdout_modalities: tuple[str, ...] = ()
    holdout_protocols: tuple[str, ...] = ()
    unet: UNetBudget = UNetBudget()
    seed: int = 0
    threads: int = 2
    target_split: str = "test"

    def __post_init__(self) -> None:
        bad = [t for t in self.tasks if t not in TASK_NAMES]
        if bad or not self.tasks:
            raise ValueError(f"tasks {list(self.tasks)}: choose some of {TASK_NAMES}")
        unknown = [
            m
            for m in self.methods
            if m not in ("neuralizer", *BASELINES) and not ADAPT_METHOD.fullmatch(m)
        ]
        if unknown:
            raise ValueError(
                f"unknown methods {unknown}; use neuralizer, neuralizer-adapt<K>, "
                f"{', '.join(BASELINES)}"
            )
        if self.target_split not in ("test", "val"):
            raise ValueError(f"target_split must be 'test' or 'val', got {self.target_split!r}")
        if self.target_split != "test" and self.source.kind == "people":
            raise ValueError("data 'people' draws its context from the validation people too")
        uses_model = any(m == "neuralizer" or ADAPT_METHOD.fullmatch(m) for m in self.methods)
        if uses_model and not self.models:
            raise ValueError("method 'neuralizer' needs 'models': {label: checkpoint path}")
        if self.pool_split not in ("test", "train") or self.source.people_fraction:
            raise ValueError("pool_split must be 'test' or 'train', and source people_fraction 0")
        if self.source.kind == "people" and (self.pool_split != "train" or self.source.protocols):
            raise ValueError(
                "data 'people' draws context from the training people: set pool_split 'train' "
                "and no protocols (the people carry 'aseg' and 'tissue')"
            )
        if not self.context_sizes or min(self.context_sizes) < 1:
            raise ValueError(f"context sizes must be >= 1, got {self.context_sizes}")
        need = max(self.context_sizes)
        if "unet" in self.methods:
            need = max(need, *self.unet.train_sizes)
        if need > self.pool_size:
            raise ValueError(f"pool_size {self.pool_size} < the largest context/training size")
        if (self.per_class or self.structures or self.class_protocol) and (
            "segmentation" not in self.tasks
        ):
            raise ValueError("per_class, class_protocol and structures need the segmentation task")
        if self.class_protocol and not self.per_class:
            raise ValueError("class_protocol chooses the protocol of per_class: set per_class > 0")
        bad = sorted(set(self.structures) - set(STRUCTURE_NAMES))
        if bad:
            raise ValueError(f"unknown structures {bad}; choose from {STRUCTURE_NAMES}")
        if self.episodes not in EPISODE_KINDS:
            raise ValueError(f"episodes {self.episodes!r}: choose one of {EPISODE_KINDS}")

    @property
    def holdout(self) -> dict[str, tuple[str, ...]]:
        return {
            "tasks": self.holdout_tasks,
            "modalities": self.holdout_modalities,
            "protocols": self.holdout_protocols,
        }
