"""``train(cfg)``: the whole training loop, a plain function (nanoGPT-style), CPU to many GPUs."""

from __future__ import annotations

import contextlib
import json
import math
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from neuralizer.data.make import check_source
from neuralizer.data.space import CROP_MM
from neuralizer.files import remove_stale_temporaries, write_atomically
from neuralizer.jsonconfig import flat_items
from neuralizer.model.checkpoint import save_checkpoint
from neuralizer.model.limits import ResourcePlan, estimate_forward_bytes
from neuralizer.model.metadata import Geometry
from neuralizer.model.network import Neuralizer
from neuralizer.tasks.episode import Batch
from neuralizer.tasks.losses import batch_loss, dice_score, episode_losses, psnr
from neuralizer.train import distributed
from neuralizer.train.config import TrainConfig
from neuralizer.train.data import build_samplers
from neuralizer.train.state import Progress, load_initial_weights, load_state, save_state


@dataclass(frozen=True)
class RunFiles:
    root: Path

    @property
    def state(self) -> Path:
        return self.root / "state.safetensors"

    @property
    def latest(self) -> Path:
        return self.root / "latest.safetensors"

    @property
    def best(self) -> Path:
        return self.root / "best.safetensors"

    @property
    def log(self) -> Path:
        return self.root / "log.jsonl"

    @property
    def marker(self) -> Path:
        """Written first into a new run folder: the folder is this project's, its files ours."""
        return self.root / ".neuralizer-run"

    def check_ours(self) -> None:
        """FileExistsError unless the folder is new, empty or a run of ours (a training state
        or the marker): training writes config.json, log.jsonl, best.safetensors… and would
        replace a user's files of those names anywhere else."""
        if not self.root.exists():
            return
        if not self.root.is_dir():
            raise FileExistsError(f"run_dir {self.root} is a file; give a folder")
        if self.state.is_file() or self.marker.is_file() or not any(self.root.iterdir()):
            return
        raise FileExistsError(
            f"run_dir {self.root} holds files but no training run of neuralizer (no "
            f"{self.state.name}): training would overwrite them; give a new or empty folder"
        )


class _StopRequest:
    """SIGINT/SIGTERM ask the loop to checkpoint and return after the current step."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = {}

    def __enter__(self) -> _StopRequest:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread: no handlers
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.requested = True

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _to(batch: Batch, device: torch.device) -> Batch:
    tensors = ("target_in", "target_out", "context_in", "context_out", "segmentation_like")
    fields = {name: getattr(batch, name).to(device, non_blocking=True) for name in tensors}
    return Batch(**fields, tasks=batch.tasks, records=batch.records)


def _autocast(device: torch.device):
    # bf16 autocast on CUDA only (untested here: no GPU); CPU trains in float32.
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


#: TrainConfig fields that ``--resume`` accepts with new values; any other change is another run.
#: ``max_steps`` extends a run; the micro-batching gives the same gradient up to float rounding
#: (speed only); ``ema_decay`` changes what is validated, not how the raw weights train (switched
#: on at a resume, the average starts from that step's weights); ``train_task_weights`` changes
#: the training mix from that step on, a curriculum (the validation set keeps ``task_weights``);
#: ``lr`` sets Adam's step size from that step on (a step-down once validation has levelled off;
#: Adam's moment estimates carry over); ``threads`` is speed only (e.g. one thread while an
#: evaluation shares the machine, two once it is alone); so is ``num_workers`` (a batch is a
#: function of the seed and its index, whichever process makes it: e.g. all cores of a GPU
#: machine for a burst, none back on a 2-core CPU); ``split_algebra`` computes the same function.
RESUME_MAY_CHANGE = (
    "max_steps",
    "lr",
    "micro_batch_size",
    "micro_batch_members",
    "ema_decay",
    "train_task_weights",
    "threads",
    "num_workers",
    "split_algebra",
)


def _resume_changes(saved: TrainConfig, cfg: TrainConfig, state: Path) -> dict[str, list]:
    """{field: [saved value, new value]} of the fields a resume changes; ValueError if one of
    them is not in :data:`RESUME_MAY_CHANGE` (see there)."""
    old, new = flat_items(saved), flat_items(cfg)
    changed = {k: [old[k], new[k]] for k in old if old[k] != new[k]}
    refused = sorted(set(changed) - set(RESUME_MAY_CHANGE))
    if refused:
        listed = ", ".join(f"{k}: {changed[k][0]!r} -> {changed[k][1]!r}" for k in refused)
        raise ValueError(f"{state} was written by a different config ({listed}); use a new run_dir")
    return changed


def micro_batch(cfg: TrainConfig, n_context: int) -> int:
    """Episodes per micro-batch at context size ``n_context``: ``micro_batch_size``, lowered so
    that a micro-batch holds at most ``micro_batch_members`` context members (never below 1).

    The gradient is the same (the loss is a mean over episodes, each micro-batch weighted by its
    share), up to float rounding; on a CPU, smaller micro-batches keep each layer's activations
    in the cache (``benchmarks/bench_train.py --micro-members``)."""
    if cfg.micro_batch_members <= 0:
        return cfg.micro_batch_size
    return max(1, min(cfg.micro_batch_size, cfg.micro_batch_members // n_context))


def train_step(model, optimizer, batch: Batch, cfg: TrainConfig, device: torch.device) -> float:
    """One optimiser step over ``batch`` in micro-batches (gradient accumulation); returns loss."""
    model.train()
    optimizer.zero_grad(set_to_none=True)
    total, size = 0.0, batch.target_in.shape[0]
    micro = micro_batch(cfg, batch.context_in.shape[1])
    for start in range(0, size, micro):
        part = slice(start, start + micro)
        last = start + micro >= size
        sync = model.no_sync() if isinstance(model, DistributedDataParallel) and not last else None
        with sync or contextlib.nullcontext(), _autocast(device):
            # The memory check ran once, up front (train); repeating it per step could stop a
            # long run midway because other processes use memory for a while.
            inputs = batch.target_in[part], batch.context_in[part], batch.context_out[part]
            raw = model(*inputs, max_memory=math.inf, split=cfg.split_algebra)
            loss = batch_loss(raw.float(), batch.target_out[part], batch.segmentation_like[part])
            (loss * (raw.shape[0] / size)).backward()
        total += loss.item() * raw.shape[0] / size
    optimizer.step()
    return total


@torch.no_grad()
def validate(model: Neuralizer, batches: list[Batch], ctx: distributed.Context) -> dict:
    """Mean loss, and per task "dice/<task>" or "psnr/<task>", over this rank's share of batches."""
    model.eval()
    sums: dict[str, list[float]] = {}
    for index in range(ctx.rank, len(batches), ctx.world_size):
        batch = _to(batches[index], ctx.device)
        raw = model(batch.target_in, batch.context_in, batch.context_out, max_memory=math.inf)
        raw = raw.float()
        losses = episode_losses(raw, batch.target_out, batch.segmentation_like)
        dice = dice_score(raw.clamp(0, 1), batch.target_out).tolist()
        peak = psnr(raw, batch.target_out).clamp(max=60.0).tolist()
        for i, task in enumerate(batch.tasks):
            seg = bool(batch.segmentation_like[i])
            entry = sums.setdefault(f"{'dice' if seg else 'psnr'}/{task}", [0.0, 0.0, 0.0])
            entry[0] += losses[i].item()
            entry[1] += dice[i] if seg else peak[i]
            entry[2] += 1
    names = sorted(
        f"{'dice' if seg else 'psnr'}/{task}"
        for b in batches
        for task, seg in zip(b.tasks, b.segmentation_like.tolist(), strict=True)
    )
    names = sorted(set(names))
    packed = torch.tensor([sums.get(n, [0.0, 0.0, 0.0]) for n in names], dtype=torch.float64)
    packed = distributed.all_reduce_sum(packed.to(ctx.device)).cpu()
    count = packed[:, 2].sum().item()
    result = {"val_loss": packed[:, 0].sum().item() / count}
    for name, (_, score, n) in zip(names, packed.tolist(), strict=True):
        if n:
            result[name] = score / n
    return result


def _append_log(path: Path, record: dict) -> None:
    with path.open("a") as file:
        file.write(json.dumps(record) + "\n")


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines written after the checkpoint we resume from (they will be redone).

    A run killed while appending leaves a torn last line: it is dropped with them.
    """
    if path.is_file():
        kept = []
        for line in path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and record.get("step", 0) <= step:
                kept.append(line)
        write_atomically(path, "".join(line + "\n" for line in kept).encode())


def _remove_stale_temporaries(files: RunFiles) -> None:
    """Temporary files of ``write_atomically`` left by a process killed mid-write."""
    names = [p.name for p in (files.state, files.latest, files.best, files.log)]
    remove_stale_temporaries(files.root, names)


def _provenance(cfg: TrainConfig, progress: Progress) -> dict:
    return {
        "data": cfg.source.kind,
        "voxel_size_mm": cfg.source.voxel_size_mm,
        "axis": cfg.source.axis,
        "step": progress.step,
        "best_val_loss": progress.best_val,
        "best_step": progress.best_step,
    }


def _geometry(cfg: TrainConfig, example: Batch) -> Geometry:
    """The slices this run trains on, which inference must reproduce (saved in checkpoints)."""
    height, width = example.target_in.shape[-2:]
    voxel_size_mm, axis = cfg.source.voxel_size_mm, cfg.source.axis
    return Geometry(image_size=(height, width), voxel_size_mm=voxel_size_mm, axis=axis)


def _save(files: RunFiles, model, ema, optimizer, progress: Progress, cfg: TrainConfig,
          geometry: Geometry) -> None:  # fmt: skip
    save_checkpoint(
        files.latest,
        _evaluated(model, ema),
        geometry=geometry,
        train_config=cfg.to_dict(),
        provenance=_provenance(cfg, progress),
    )
    save_state(files.state, model, optimizer, progress, cfg.to_dict(), ema=ema)


def _evaluated(model: Neuralizer, ema: AveragedModel | None) -> Neuralizer:
    """The weights that are validated and written to "best" and "latest"."""
    return model if ema is None else ema.module


def train(cfg: TrainConfig, *, resume: bool = False, max_memory: float | None = None) -> Progress:
    """Train (or, with ``resume``, continue) the run in ``cfg.run_dir``; returns its progress.

    Before the first step, the peak memory of a training step (``micro_batch_size`` episodes of
    ``max_context`` pairs) is estimated and checked against ``max_memory`` bytes (default: the
    memory available now): ``MemoryLimitError`` (a ValueError) if it does not fit.
    """
    files = RunFiles(Path(cfg.run_dir))
    files.check_ours()  # before anything is built or written
    training_memory(cfg).check(max_memory)  # before the data sets are built
    ctx = distributed.setup()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    check_source(cfg.source)
    model = Neuralizer(cfg.model)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    progress = Progress()
    # The average lives on the model's device; built before the state loads so that a resumed
    # average replaces it, and an average switched on at this resume starts from the loaded
    # weights (its first update copies them).
    ema = None
    if cfg.ema_decay:
        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay))
    # On the device before any state loads: Adam's moments are restored onto their parameter's
    # device at load time, so a CPU run resumes on a GPU (and back) with its moments beside the
    # weights (moving the model afterwards would leave them behind).
    model.to(ctx.device)
    if ema is not None:
        ema.to(ctx.device)
    if resume and files.state.is_file():
        progress, saved = load_state(files.state, model, optimizer, ema=ema)
        changed = _resume_changes(TrainConfig.from_dict(saved), cfg, files.state)
        for group in optimizer.param_groups:  # the saved groups hold the old step size
            group["lr"] = cfg.lr
        if ctx.is_main:
            _truncate_log(files.log, progress.step)
            # config.json keeps the run's first config; the log says what each resume changed.
            _append_log(files.log, {"step": progress.step, "event": "resume", "changed": changed})
            _remove_stale_temporaries(files)
    elif files.state.is_file():
        raise FileExistsError(f"{files.state} exists: pass --resume, or use a new run_dir")
    elif cfg.init:
        load_initial_weights(model, cfg.init)
    # The last block's context update feeds nothing (its weights exist for the released layout):
    # it never gets a gradient, and DistributedDataParallel must not wait for one.
    for parameter in (model.decoder or model.encoder)[-1].context_combine.parameters():
        parameter.requires_grad_(False)
    if ctx.device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    net = DistributedDataParallel(model) if ctx.world_size > 1 else model

    train_sampler, val_batches = build_samplers(cfg)
    geometry = _geometry(cfg, val_batches[0])
    if ctx.is_main and progress.step == 0:
        # A new run (or a resume before its first checkpoint): nothing is written before the
        # memory check, so a refused run leaves no half-started run directory behind.
        files.root.mkdir(parents=True, exist_ok=True)
        files.marker.touch()
        write_atomically(files.root / "config.json", json.dumps(cfg.to_dict(), indent=1).encode())
        files.log.unlink(missing_ok=True)
        _remove_stale_temporaries(files)
    batch_index = lambda step: (0 if cfg.fixed_batch else step) * ctx.world_size + ctx.rank  # noqa: E731
    loader = torch.utils.data.DataLoader(
        _Batches(train_sampler, batch_index, progress.step, cfg.max_steps),
        batch_size=None,
        num_workers=cfg.num_workers,
        collate_fn=_identity,
        # Its own generator: starting to iterate draws a base seed, which would otherwise come
        # from (and shift) the global RNG that the training state saves and restores.
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    bar = tqdm(total=cfg.max_steps, initial=progress.step, disable=not ctx.is_main, unit="step")
    episodes_per_step = cfg.sampler.batch_size * ctx.world_size
    started, start_step = time.perf_counter(), progress.step
    with _StopRequest() as stop:
        for batch in loader:
            loss = train_step(net, optimizer, _to(batch, ctx.device), cfg, ctx.device)
            if ema is not None:
                ema.update_parameters(model)
            progress.step += 1
            seconds = time.perf_counter() - started  # since this start or resume
            rate = episodes_per_step * (progress.step - start_step) / seconds
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", episodes_per_s=f"{rate:.2f}")
            if ctx.is_main:
                record = {
                    "step": progress.step,
                    "loss": loss,
                    "episodes_per_s": rate,
                    "seconds": round(seconds, 3),  # since this start or resume
                    "n_context": batch.context_in.shape[1],
                }
                _append_log(files.log, record)
            evaluated = _evaluated(model, ema)
            done = _end_of_epoch(progress, cfg, evaluated, val_batches, ctx, files, geometry)
            done = done or progress.step >= cfg.max_steps
            if ctx.is_main and (
                done or stop.requested or progress.step % cfg.checkpoint_every == 0
            ):
                _save(files, model, ema, optimizer, progress, cfg, geometry)
            if done or stop.requested:
                break
    bar.close()
    spread = distributed.max_parameter_spread(model)
    if ctx.is_main:
        _append_log(files.log, {"step": progress.step, "event": "end", "rank_spread": spread})
    distributed.teardown()
    return progress


def slice_size(source) -> tuple[int, int]:
    """H×W of the run's slices, from its source config (before any subject is built): a
    phantom's size, else the paper's crop at the voxel size (the larger in-plane sides)."""
    if source.kind == "phantom":
        return source.phantom_size, source.phantom_size
    sides = sorted((round(c / source.voxel_size_mm) for c in CROP_MM), reverse=True)
    return sides[0], sides[1]


def training_memory(cfg: TrainConfig) -> ResourcePlan:
    """The run's resource plan, before anything is built: the validation set and the training
    batches (held whole), the model with its gradients, Adam's moments and the weight average,
    and one training step of a micro-batch at ``max_context`` pairs (autograd). The steps
    themselves pass ``max_memory=math.inf`` to the model: this is the run's one check."""
    config, sampler = cfg.model, cfg.sampler
    height, width = slice_size(cfg.source)
    max_context, micro = sampler.max_context, micro_batch(cfg, sampler.max_context)
    channels = config.in_channels + config.out_channels
    episode = 4 * height * width * ((max_context + 1) * channels + 1)
    with torch.device("meta"):  # counts the parameters without allocating them
        n_parameters = sum(p.numel() for p in Neuralizer(config).parameters())
    copies = 4 + (1 if cfg.ema_decay else 0)  # weights, gradients, 2 Adam moments, average
    step = estimate_forward_bytes(config.channels, config.in_channels, config.out_channels,
                                  micro, max_context, height, width, path="grad")  # fmt: skip
    parts = {
        "validation set": cfg.val_batches * sampler.batch_size * episode,
        "training batches": (2 + cfg.num_workers) * sampler.batch_size * episode,
        "model and optimiser": copies * 4 * n_parameters,
        "training step": step,
    }
    what = (
        f"training (batches of {sampler.batch_size} episodes, {cfg.val_batches} validation "
        f"batches, micro-batch of {micro} at max_context={max_context}, {height}×{width}, "
        f"channels={config.channels})"
    )
    return ResourcePlan(what, parts)


def _end_of_epoch(progress, cfg, model, val_batches, ctx, files, geometry: Geometry) -> bool:
    """Validate every ``steps_per_epoch`` steps; keep the best; True when patience runs out."""
    if progress.step % cfg.steps_per_epoch:
        return False
    result = {"step": progress.step, **validate(model, val_batches, ctx)}
    progress.history.append(result)
    if result["val_loss"] < progress.best_val:
        progress.best_val, progress.best_step, progress.bad_epochs = (
            result["val_loss"],
            progress.step,
            0,
        )
        if ctx.is_main:
            provenance = {**_provenance(cfg, progress), "validation": result}
            save_checkpoint(files.best, model, geometry=geometry, train_config=cfg.to_dict(),
                            provenance=provenance)  # fmt: skip
    else:
        progress.bad_epochs += 1
    if ctx.is_main:
        _append_log(files.log, {**result, "event": "validation", "best_step": progress.best_step})
    return progress.bad_epochs >= cfg.patience or not math.isfinite(result["val_loss"])


def _identity(x):
    return x


class _Batches(torch.utils.data.Dataset):
    """Batches of steps ``first_step .. max_steps - 1`` (map-style, so workers keep the order)."""

    def __init__(self, sampler, batch_index, first_step: int, max_steps: int) -> None:
        self.sampler, self.batch_index = sampler, batch_index
        self.first_step, self.n = first_step, max(0, max_steps - first_step)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> Batch:
        return self.sampler.batch(self.batch_index(self.first_step + index))
