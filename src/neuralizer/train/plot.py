"""``neuralizer plot-log``: training loss and validation curves from a run's JSON-lines log."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from neuralizer.files import write_atomically


def read_log(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"log not found: {path}")
    records = []
    lines = path.read_text(errors="replace").splitlines()
    for number, line in enumerate(lines, 1):
        if line.strip():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                if number == len(lines):  # torn by a run killed mid-write, or still being written
                    break
                raise ValueError(f"{path}:{number} is not a JSON line") from None
            if not isinstance(record, dict):
                raise ValueError(f"{path}:{number} is not a JSON object")
            records.append(record)
    return records


def _number(value) -> float:
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if is_number else np.nan


def _series(records: list[dict], key: str, log) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of the records holding ``key``; ValueError if either is not a number."""
    chosen = [r for r in records if key in r]
    for record in chosen:
        value = record[key]  # NaN is a number here (a diverged loss is worth plotting)
        if np.isnan(_number(record.get("step"))) or not isinstance(value, int | float):
            raise ValueError(f"{log}: a record with {key!r} needs numbers for 'step' and {key!r}")
    return (
        np.array([_number(r["step"]) for r in chosen]),
        np.array([_number(r[key]) for r in chosen]),
    )


def wall_time(records: list[dict], episodes_per_step: int | None = None) -> tuple[float, int]:
    """(hours, segments) of training in a run's log; a segment runs from a start or a resume to
    the next stop (an ``end`` or ``resume`` event). A segment's time is the ``seconds`` of its last
    step record (time since the segment started: validation and checkpoints included); logs
    written before steps carried ``seconds`` give it as steps × ``episodes_per_step`` ÷ the
    running rate ``episodes_per_s`` (without ``episodes_per_step``, such a segment is left out).
    Records it cannot read are skipped; a run killed without a stop event and resumed by code older
    than the ``resume`` event merges two segments and is undercounted."""
    hours, segments, start, elapsed = 0.0, 0, None, None
    for record in [*records, {"event": "end"}]:
        if record.get("event") in ("end", "resume"):
            if elapsed is not None:
                hours, segments = hours + elapsed / 3600, segments + 1
            start, elapsed = None, None
            continue
        step, seconds, rate = (
            _number(record.get(k)) for k in ("step", "seconds", "episodes_per_s")
        )
        if "loss" not in record or not np.isfinite(step):
            continue
        start = step - 1 if start is None else start
        if np.isfinite(seconds) and seconds >= 0:
            elapsed = seconds
        elif episodes_per_step and np.isfinite(rate) and rate > 0:
            elapsed = episodes_per_step * (step - start) / rate
    return hours, segments


def describe_log(log: str | Path, records: list[dict] | None = None) -> str:
    """One line: the steps of a run's log and its training wall time (:func:`wall_time`; the
    episodes per step of old logs from the ``batch_size`` in the run's ``config.json``, if any).
    ``records``: the log's records if already read (:func:`read_log`)."""
    records = read_log(log) if records is None else records
    steps = [_number(r.get("step")) for r in records if "loss" in r]
    steps = [s for s in steps if np.isfinite(s)]
    if not steps:
        return f"{log}: no training steps"
    batch = None
    config = Path(log).with_name("config.json")
    try:
        batch = json.loads(config.read_text()).get("batch_size")
    except (OSError, ValueError, AttributeError):
        pass
    hours, segments = wall_time(records, batch if isinstance(batch, int) else None)
    return (
        f"{log}: steps {min(steps):.0f}–{max(steps):.0f}; about {hours:.1f} h of training wall "
        f"time over {segments} segment{'s' * (segments != 1)} (start or resume to stop)"
    )


def plot_log(log: str | Path, output: str | Path, *, smooth: int = 50) -> list[dict]:
    """Three panels: loss (steps, moving average, validation), validation Dice, validation PSNR.
    Returns the log's records."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_log(log)
    steps, losses = _series(records, "loss", log)
    validation = [r for r in records if r.get("event") == "validation"]
    _series(validation, "val_loss", log)
    if not len(steps):
        raise ValueError(f"{log} holds no training steps yet")
    figure, (left, middle, right) = plt.subplots(1, 3, figsize=(15, 4))
    left.plot(steps, losses, color="0.8", lw=0.5, label="step loss")
    if len(losses) >= smooth:
        kernel = np.ones(smooth) / smooth
        left.plot(
            steps[smooth - 1 :], np.convolve(losses, kernel, "valid"), label=f"mean of {smooth}"
        )
    left.plot([r["step"] for r in validation], [r["val_loss"] for r in validation], "k.-",
              label="validation loss")  # fmt: skip
    left.set(xlabel="step", ylabel="loss", yscale="log", title="loss")
    left.legend()
    for ax, metric, unit in ((middle, "dice", "Dice"), (right, "psnr", "PSNR (dB)")):
        for key in sorted({k for r in validation for k in r if k.startswith(metric + "/")}):
            ax.plot([r["step"] for r in validation], [_number(r.get(key)) for r in validation],
                    ".-", lw=0.8, label=key.split("/", 1)[1])  # fmt: skip
        ax.set(xlabel="step", ylabel=unit, title=f"validation {unit}")
        if ax.lines:
            ax.legend(fontsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    write_atomically(output, buffer.getvalue())
    return records
