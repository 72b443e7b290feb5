"""``neuralizer plot-log``: training loss and validation curves from a run's JSON-lines log."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from neuralizer.model.checkpoint import write_atomically


def read_log(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"log not found: {path}")
    records = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                raise ValueError(f"{path}:{number} is not a JSON line") from None
    return records


def plot_log(log: str | Path, output: str | Path, *, smooth: int = 50) -> None:
    """Three panels: loss (steps, moving average, validation), validation Dice, validation PSNR."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_log(log)
    steps = np.array([r["step"] for r in records if "loss" in r])
    losses = np.array([r["loss"] for r in records if "loss" in r])
    validation = [r for r in records if r.get("event") == "validation"]
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
            ax.plot([r["step"] for r in validation], [r.get(key, np.nan) for r in validation],
                    ".-", lw=0.8, label=key.split("/", 1)[1])  # fmt: skip
        ax.set(xlabel="step", ylabel=unit, title=f"validation {unit}")
        if ax.lines:
            ax.legend(fontsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    write_atomically(output, buffer.getvalue())
