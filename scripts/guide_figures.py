"""Pictures for docs/guide.md: each task on embedded test subjects, inputs and results.

    .venv/bin/python scripts/guide_figures.py            # writes docs/img/guide-*.png

Results come from the shipped model. Without its weights file, the result panels say so instead of
showing the output of untrained weights (which would only mislead).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

from neuralizer.data.space import coronal_view
from neuralizer.files import write_atomically
from neuralizer.infer.presets import preset_context
from neuralizer.model.checkpoint import DEFAULT_WEIGHTS

OUT = Path(__file__).resolve().parent.parent / "docs" / "img"
TARGET = 8  # test-split subject used as "the user's scan"
N_CONTEXT = 4


def _figure(rows: list[tuple[str, list[tuple[str, np.ndarray | None, bool]]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_cols = max(len(panels) for _, panels in rows)
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(2.3 * n_cols, 2.5 * len(rows)),
                             squeeze=False)  # fmt: skip
    for r, (name, panels) in enumerate(rows):
        for c, ax in enumerate(axes[r]):
            ax.set_axis_off()
            if c >= len(panels):
                continue
            title, image, is_mask = panels[c]
            if image is None:
                ax.text(0.5, 0.5, "result: rerun once\nthe shipped model\nexists", ha="center",
                        va="center", fontsize=8, transform=ax.transAxes)  # fmt: skip
            else:
                ax.imshow(image, cmap="gray" if not is_mask else "magma", vmin=0,
                          vmax=1 if is_mask else np.percentile(image, 99.5) or 1)  # fmt: skip
            ax.set_title(f"{name}: {title}" if c == 0 else title, fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    write_atomically(path, buffer.getvalue())
    print(f"wrote {path}")


def volume_tasks(model) -> None:
    """Presets on a 3D test subject: skull-strip, white matter, hippocampus, denoise."""
    from neuralizer.data.subjects import SynthConfig, SynthSliceSource
    from neuralizer.infer import predict_volume
    from neuralizer.infer.presets import PRESETS

    source = SynthSliceSource("test", TARGET + 1, SynthConfig(voxel_size_mm=2.0))
    volumes, meta = source.volumes(TARGET)
    y = int(round(meta["extent"][1][0] + meta["paper_position"] * np.diff(meta["extent"][1])[0]))
    rows = []
    for name in ("skullstrip", "white-matter", "hippocampus", "denoise"):
        _, make_in, make_out = PRESETS[name]
        target, truth = make_in(volumes, int(meta["seed"])), make_out(volumes, int(meta["seed"]))
        c_in, c_out = preset_context(name, N_CONTEXT)
        result = None
        if model is not None:
            image = nib.Nifti1Image(target, source.grid.affine)
            predicted = predict_volume(image, c_in, c_out, model=model)  # registered (default)
            result = coronal_view(predicted.prediction.dataobj, y)
        mask = name not in ("denoise",)
        rows.append((name, [
            ("target_in", coronal_view(target, y), False),
            ("context_in[0]", coronal_view(c_in[0].data[0], y), False),
            ("context_out[0]", coronal_view(c_out[0].data[0], y), mask),
            ("prediction", result, mask),
            ("truth", coronal_view(truth, y), mask),
        ]))  # fmt: skip
    _figure(rows, OUT / "guide-volume-tasks.png")


def modality_transfer(model) -> None:
    """2D: T1-like to T2-like on coronal slices of test subjects (the ``predict`` API)."""
    from neuralizer.data import render, sample_profile
    from neuralizer.data.subjects import SynthConfig, SynthSliceSource
    from neuralizer.infer import predict

    source = SynthSliceSource("test", TARGET + 1, SynthConfig(voxel_size_mm=2.0))
    rng = np.random.default_rng(0)
    t1, t2 = sample_profile("t1", rng), sample_profile("t2", rng)
    pairs = []
    for index in (TARGET, *range(N_CONTEXT)):
        subject = source.get(index, source.paper_position(index))
        pairs.append((render(subject, t1, rng), render(subject, t2, rng)))
    (target, truth), context = pairs[0], pairs[1:]
    result = None
    if model is not None:
        c_in, c_out = [p[0] for p in context], [p[1] for p in context]
        result = predict(target, c_in, c_out, model=model, spacing=2.0, task="image").prediction
    row = [("target_in (T1-like)", target, False), ("context_in[0]", context[0][0], False),
           ("context_out[0] (T2-like)", context[0][1], False), ("prediction", result, False),
           ("truth", truth, False)]  # fmt: skip
    _figure([("modality transfer", row)], OUT / "guide-modality-transfer.png")


def main() -> None:
    from neuralizer.model import load

    model = load() if DEFAULT_WEIGHTS.is_file() else None
    if model is None:
        print("no shipped model: result panels are placeholders", file=sys.stderr)
    volume_tasks(model)
    modality_transfer(model)


if __name__ == "__main__":
    main()
