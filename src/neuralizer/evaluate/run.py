"""Run an evaluation configuration: every (method, instance, context size, target) row once.

Resumable: rows already in the results CSV are skipped; missing rows (never computed, or deleted)
are computed, and only those. Methods (SPEC §7): each Neuralizer model of ``config.models``
(optionally with context bootstrapping, as in prediction, or adapted to the context pairs first),
the mean of the context outputs, the target's input unchanged (image tasks), atlas propagation
and the task-specific U-Nets (trained on demand as resumable jobs).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from neuralizer.data.make import check_source
from neuralizer.evaluate.baselines import fuse, identity_baseline, mean_baseline, propagate
from neuralizer.evaluate.config import ADAPT_METHOD, EvalConfig
from neuralizer.evaluate.metrics import metric_name, score
from neuralizer.evaluate.results import append_rows, exclusive, read_rows, row_key
from neuralizer.evaluate.sets import Instance, build_instances
from neuralizer.evaluate.unet import train_unet
from neuralizer.files import write_atomically
from neuralizer.infer.ensemble import EnsembleConfig, run_ensemble

#: predict(instance, n, targets) -> len(targets)×1×H×W raw predictions
Predictor = Callable[[Instance, int, list[int]], np.ndarray]


def neuralizer_predictor(model, *, ensemble: int = 0, seed: int = 0, chunk: int = 4) -> Predictor:
    """Neuralizer with the first n pool pairs as context, through the prediction code's
    :func:`~neuralizer.infer.ensemble.run_ensemble`; ``ensemble`` K > 1: context bootstrapping
    (K passes, n pairs drawn with replacement, a small affine on the target; SPEC §5)."""

    def predict(inst: Instance, n: int, targets: list[int]) -> np.ndarray:
        b = len(targets)
        context_in = torch.from_numpy(inst.pool_in[:n]).expand(b, -1, -1, -1, -1)
        context_out = torch.from_numpy(inst.pool_out[:n]).expand(b, -1, -1, -1, -1)
        generator = torch.Generator().manual_seed(seed * 1_000_003 + inst.index * 1009 + n)
        mean, _ = run_ensemble(
            model, torch.from_numpy(inst.target_in[targets]), context_in, context_out,
            config=EnsembleConfig(passes=max(ensemble, 1)), generator=generator, batch_size=chunk,
        )  # fmt: skip
        return mean.numpy()

    return predict


def adapted_predictor(
    model, steps: int, summaries: Path, *, label: str, seed: int = 0, chunk: int = 4, **settings
) -> Predictor:
    """Neuralizer adapted for ``steps`` steps to the first n pool pairs
    (:func:`~neuralizer.infer.adapt.adapt_model`, once per instance and n, shared by its
    targets), then run with those n pairs as context; n = 1 cannot adapt: the model as it is.
    Each adaptation's time is recorded in ``summaries`` (beside the U-Nets' training times).
    ``settings``: other :class:`~neuralizer.infer.adapt.AdaptConfig` fields (lr, parameters)."""
    from neuralizer.infer.adapt import AdaptConfig, adapt_model

    config = AdaptConfig(steps=steps, seed=seed, **settings)

    def predict(inst: Instance, n: int, targets: list[int]) -> np.ndarray:
        net = model
        if n >= 2:
            outputs = inst.pool_out[None, :n]
            if inst.segmentation_like:
                outputs = (outputs >= 0.5).astype(np.float32)
            adapted = adapt_model(model, inst.pool_in[None, :n], [outputs],
                                  inst.segmentation_like, config)  # fmt: skip
            net = adapted.model
            entry = {"steps": steps, "lr": config.lr, "parameters": config.parameters,
                     "batch": config.batch, "n_pairs": n, "seconds": round(adapted.seconds, 2),
                     "threads": torch.get_num_threads()}  # fmt: skip
            record_summary(summaries, f"{label} {inst.task}-{inst.index}-n{n}", entry)
        return neuralizer_predictor(net, seed=seed, chunk=chunk)(inst, n, targets)

    return predict


def adapt_summaries_path(config: EvalConfig) -> Path:
    """``<output folder>/<name>-adapt.json``: every adaptation's steps and seconds."""
    return Path(config.output).with_name(f"{config.name}-adapt.json")


def mean_predictor(inst: Instance, n: int, targets: list[int]) -> np.ndarray:
    """The voxel-wise mean of the first n context outputs, the same for every target."""
    return np.stack([mean_baseline(inst.pool_out[:n])] * len(targets))


def identity_predictor(inst: Instance, n: int, targets: list[int]) -> np.ndarray:
    """Each target's own input (channel 0) as its output; ``n`` is not used."""
    return np.stack([identity_baseline(inst.target_in[t]) for t in targets])


def applies(method: str, inst: Instance) -> bool:
    """Whether ``method`` is scored on ``inst``: identity only on image-output tasks."""
    return not (method == "identity" and inst.segmentation_like)


def atlas_predictor(seed: int = 0, *, deformable: bool = True) -> Predictor:
    """Atlas propagation (``deformable``: affine then B-spline; else the affine stage alone);
    each (target, pool pair) registration is done once per instance."""
    cache: dict[tuple[str, int, int], np.ndarray] = {}

    def predict(inst: Instance, n: int, targets: list[int]) -> np.ndarray:
        out = []
        for t in targets:
            key = (inst.task, inst.index, t)
            have = cache.get(key, np.zeros((0, *inst.pool_out.shape[1:]), np.float32))
            if len(have) < n:
                more = propagate(
                    inst.target_in[t], inst.pool_in[len(have) : n], inst.pool_out[len(have) : n],
                    segmentation_like=inst.segmentation_like, seed=seed, deformable=deformable,
                )  # fmt: skip
                cache[key] = have = np.concatenate([have, more])
            out.append(fuse(have[:n]))
        return np.stack(out)

    return predict


def unet_predictor(config: EvalConfig) -> Predictor:
    """The U-Net trained on the first n pool pairs (trained now if its job is not finished)."""

    @torch.inference_mode(False)
    def predict(inst: Instance, n: int, targets: list[int]) -> np.ndarray:
        name = f"{inst.task}-{inst.index}-n{n}"
        job = Path(config.unet.run_dir) / config.name / name
        model = train_unet(
            job, inst.pool_in[:n], inst.pool_out[:n], inst.segmentation_like, config.unet,
            seed=config.seed,
        )  # fmt: skip
        record_unet_summary(unet_summaries_path(config), name, job / "summary.json")
        with torch.inference_mode():
            return model(torch.from_numpy(inst.target_in[targets])).numpy()

    return predict


def unet_summaries_path(config: EvalConfig) -> Path:
    """``<output folder>/<name>-unet.json``: every trained U-Net's summary, kept beside the
    results (the jobs' own folders, with their weights, are not committed)."""
    return Path(config.output).with_name(f"{config.name}-unet.json")


def record_unet_summary(path: Path, name: str, summary: Path) -> None:
    """Add (or refresh) job ``name``'s ``summary.json`` in the summaries file ``path``."""
    record_summary(path, name, json.loads(summary.read_text()))


def record_summary(path: Path, name: str, entry: dict) -> None:
    """Add (or refresh) entry ``name`` of the JSON summaries file ``path`` (written atomically)."""
    known = json.loads(path.read_text()) if path.is_file() else {}
    if known.get(name) != entry:
        known[name] = entry
        text = json.dumps(dict(sorted(known.items())), indent=1) + "\n"
        write_atomically(path, text.encode())


def make_predictors(config: EvalConfig, methods: Sequence[str]) -> dict[str, Predictor]:
    """Method name (as in the CSV) -> predictor, for the chosen subset of ``config.methods``."""
    from neuralizer import load

    predictors: dict[str, Predictor] = {}
    for method in methods:
        if method == "neuralizer":
            for label, path in config.models.items():
                model = load(path)
                predictors[label] = neuralizer_predictor(model, seed=config.seed)
                if config.ensemble:
                    predictors[f"{label}-ens{config.ensemble}"] = neuralizer_predictor(
                        model, ensemble=config.ensemble, seed=config.seed
                    )
        elif method == "mean":
            predictors["mean"] = mean_predictor
        elif method == "identity":
            predictors["identity"] = identity_predictor
        elif method == "atlas":
            predictors["atlas"] = atlas_predictor(config.seed)
        elif method == "atlas-affine":
            predictors["atlas-affine"] = atlas_predictor(config.seed, deformable=False)
        elif method == "unet":
            predictors["unet"] = unet_predictor(config)
        elif ADAPT_METHOD.fullmatch(method):
            steps = int(ADAPT_METHOD.fullmatch(method).group(1))
            for label, path in config.models.items():
                name = f"{label}-adapt{steps}"
                predictors[name] = adapted_predictor(
                    load(path), steps, adapt_summaries_path(config), label=name, seed=config.seed
                )
    return predictors


def _rows(config, method, inst, n, targets, values, seconds) -> list[dict]:
    return [
        {
            "experiment": config.name,
            "method": method,
            "task": inst.task,
            "instance": inst.index,
            "protocol": inst.protocol,
            "label": inst.label,
            "modality": inst.modalities[t],
            "n_context": n,
            "target": t,
            "metric": metric_name(inst.segmentation_like),
            "value": f"{v:.6g}",
            "seconds": f"{seconds:.4g}",
        }  # fmt: skip
        for t, v in zip(targets, values, strict=True)
    ]


def run(
    config: EvalConfig,
    *,
    methods: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
    log: Callable[[str], None] | None = None,
) -> list[tuple[str, ...]]:
    """Compute every missing row of ``config`` (restricted to ``methods``/``tasks`` if given),
    appending to ``config.output``. Returns the keys of the rows computed by this call."""
    log = log or (lambda message: print(message, file=sys.stderr))
    methods = tuple(methods or config.methods)
    unknown = set(methods) - set(config.methods)
    if unknown or not set(tasks or config.tasks) <= set(config.tasks):
        raise ValueError(f"choose methods from {config.methods} and tasks from {config.tasks}")
    check_source(config.source)
    torch.set_num_threads(config.threads)
    with exclusive(config.output):
        return _run_locked(config, methods, tasks or config.tasks, log)


def _run_locked(config, methods, tasks, log) -> list[tuple[str, ...]]:
    done = {row_key(r) for r in read_rows(config.output)}
    predictors = make_predictors(config, methods)
    computed: list[tuple[str, ...]] = []
    for task in tasks:
        for index in range(config.instances_per_task):
            for inst in build_instances(config, task, index):
                for method, predict in predictors.items():
                    if not applies(method, inst):
                        continue
                    sizes = config.unet.train_sizes if method == "unet" else config.context_sizes
                    for n in sizes:
                        key = (config.name, method, task, str(inst.index), str(n))
                        targets = [
                            t for t in range(len(inst.target_in)) if (*key, str(t)) not in done
                        ]
                        if not targets:
                            continue
                        start = time.perf_counter()
                        pred = predict(inst, n, targets)
                        seconds = (time.perf_counter() - start) / len(targets)
                        values = score(pred, inst.target_out[targets], inst.segmentation_like)
                        rows = _rows(config, method, inst, n, targets, values, seconds)
                        append_rows(config.output, rows)
                        computed += [row_key(r) for r in rows]
                        log(f"{config.name} {method} {task}#{inst.index} n={n}: "
                            f"{np.mean(values):.3f} ({len(targets)} targets)")  # fmt: skip
    return computed
