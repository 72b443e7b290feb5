"""What the web app does, without the web: pick the model, write built-in examples, predict.

A prediction goes through the runner of ``neuralizer predict`` (``neuralizer.infer.run``: reading,
checks, ``predict_volume``/``predict``, the atomic writer), with the command's defaults, so a result
downloaded from the page is the file the command writes for the same inputs, model and seed.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from neuralizer.errors import one_line
from neuralizer.infer.io import suffix
from neuralizer.infer.paths import NAME_MAX
from neuralizer.infer.plan import ALL_VIEWS
from neuralizer.model.network import Neuralizer

#: Largest upload the app decodes, in values (voxels × channels): 256 MiB as float32, e.g. a
#: 0.5 mm whole head (384×448×384). Checked from the file's header before any decompression, so
#: a small compressed file that promises a huge volume (a "bomb") is refused without decoding it.
MAX_UPLOAD_VALUES = 2**26
#: Context pairs of a built-in example (training people); its target is a test person.
EXAMPLE_PAIRS = 3
#: slice directions of a volume prediction, the default first (``neuralizer predict --axis``)
SLICE_DIRECTIONS = (*ALL_VIEWS, "all")


@dataclass(frozen=True)
class AppModel:
    """The network the app predicts with, and one line telling the user what it is."""

    net: Neuralizer
    description: str
    trained: bool


def choose_model(path: str | Path | None) -> AppModel:
    """``path``'s checkpoint; else the shipped model; else, like the demo, an untrained c=32
    network (random weights, seed 0), described as such so nobody takes its output for a result."""
    from neuralizer.model.checkpoint import DEFAULT_WEIGHTS, UNTRAINED_CHANNELS, load, untrained

    if path is not None:
        net = load(path)
        step = (net.provenance or {}).get("step")
        trained = f", after {step} training steps" if isinstance(step, int) else ""
        what = f"checkpoint `{Path(path).name}` (c={net.config.channels}{trained})"
        return AppModel(net, what, True)
    if DEFAULT_WEIGHTS.is_file():
        return AppModel(load(), "the shipped trained model", True)
    what = (
        f"**untrained network** (random weights, c={UNTRAINED_CHANNELS}): the shipped weights "
        "file is missing, so results show how the app works, not what Neuralizer can do. "
        "Start the app with `--model FILE.safetensors` to use a checkpoint."
    )
    return AppModel(untrained(seed=0), what, False)


@dataclass(frozen=True)
class ExampleFiles:
    """A built-in example as NIfTI files: a target and its context pairs (inputs, outputs)."""

    target: Path
    context_in: list[Path]
    context_out: list[Path]


def example_names() -> dict[str, str]:
    """Built-in example name -> what it shows (the ``--preset`` tasks)."""
    from neuralizer.infer.presets import PRESETS

    return {name: text for name, (text, _, _) in PRESETS.items()}


def write_example(name: str, folder: Path, n_context: int = EXAMPLE_PAIRS) -> ExampleFiles:
    """Write built-in example ``name`` into ``folder`` (once; later calls reuse the files).

    The context is the ``--preset`` pairs of the first ``n_context`` training people; the target
    is the preset's input of the first test person (never used in training), on the same 2 mm
    grid.
    """
    from neuralizer.infer.io import write_output

    folder = folder / name
    files = ExampleFiles(
        folder / "target.nii.gz",
        [folder / f"example{i + 1}_input.nii.gz" for i in range(n_context)],
        [folder / f"example{i + 1}_output.nii.gz" for i in range(n_context)],
    )
    if files.target.is_file():  # written last: the example is complete
        return files
    from neuralizer.infer.presets import preset_context, preset_scan

    c_in, c_out = preset_context(name, n_context)
    for path, loaded in zip(files.context_in + files.context_out, c_in + c_out, strict=True):
        write_output(path, loaded.image)
    write_output(files.target, preset_scan(name).image)
    return files


@dataclass(frozen=True)
class Prediction:
    """A finished prediction: what was read, the result, and the files to download."""

    target: object  # neuralizer.infer.io.Loaded
    context_in: list
    context_out: list
    result: object  # neuralizer.infer.engine.PredictResult
    downloads: list[Path]


def output_name(target: str | Path, what: str) -> str:
    """``scan.nii.gz`` -> ``scan_<what>.nii.gz``; 2D targets give NPY (their values, exactly).
    A long stem is cut so that the name stays within the file system's 255 bytes."""
    name = Path(target).name
    stem = name[: -len(suffix(name))] if suffix(name) else name
    ending = f"_{what}" + (".nii.gz" if suffix(name) in (".nii", ".nii.gz") else ".npy")
    while len(os.fsencode(stem + ending)) > NAME_MAX:
        stem = stem[:-1]
    return stem + ending


def run_prediction(
    model: Neuralizer,
    target: str | Path,
    context_in: list[str | Path],
    context_out: list[str | Path],
    *,
    ensemble: int,
    align: str,
    seed: int,
    folder: Path,
    axis: str = "coronal",
    adapt: int = 0,
) -> Prediction:
    """Check the files, predict, and write the result (and uncertainty) into a new sub-folder of
    ``folder``. User errors raise ValueError/FileNotFoundError before the model runs."""
    from neuralizer.infer.plan import PredictOptions, load_context
    from neuralizer.infer.run import OutputFiles, run_one

    if not target:
        raise ValueError("no target: upload the scan to process, or pick a built-in example")
    if int(ensemble) != ensemble or ensemble < 1:
        raise ValueError(f"the ensemble size must be a whole number ≥ 1, got {ensemble}")
    if axis not in SLICE_DIRECTIONS:
        choices = ", ".join(SLICE_DIRECTIONS)
        raise ValueError(f"the slice direction must be one of {choices}, got {axis!r}")
    # ``neuralizer predict``'s defaults for everything the page does not ask
    if int(adapt) != adapt or adapt < 0:
        raise ValueError(f"the adaptation steps must be a whole number ≥ 0, got {adapt}")
    options = PredictOptions(
        ensemble=int(ensemble), align=align, seed=int(seed), axis=axis, adapt=int(adapt)
    )
    # uploads are single files: a name is never read as joined channels or a glob
    target, context_in, context_out = (str(target), [(str(p),) for p in context_in],
                                       [(str(p),) for p in context_out])  # fmt: skip
    for spec in [target, *context_in, *context_out]:
        check_upload_size(spec)
    run_folder = Path(tempfile.mkdtemp(prefix="run-", dir=folder))
    output = run_folder / output_name(target, "prediction")
    uncertainty = run_folder / output_name(target, "uncertainty") if ensemble > 1 else None
    context = load_context(options, context_in, context_out)
    files = OutputFiles(output, uncertainty=uncertainty)
    loaded, result = run_one((target,), context, options, files, model, progress=True)
    downloads = [output] + ([uncertainty] if uncertainty is not None else [])
    if loaded.image is not None and result.task != "image":  # the volume of each structure
        from neuralizer.infer.cohort import Cohort

        table = run_folder / output_name(target, "volumes").replace(".nii.gz", ".tsv")
        cohort = Cohort(statistics=table)
        cohort.add(Path(target).name, loaded.data, loaded.image.affine, result)
        cohort.finish(quiet=True)
        downloads.append(table)
    return Prediction(loaded, context.context_in, context.context_out, result, downloads)


def check_upload_size(spec) -> None:
    """ValueError if an upload would decode to more than :data:`MAX_UPLOAD_VALUES` values (its
    header is read; nothing is decompressed)."""
    from neuralizer.infer.resources import input_size

    size = input_size(spec)
    values = size.voxels * size.channels
    if values > MAX_UPLOAD_VALUES:
        shape = "×".join(map(str, size.spatial))
        raise ValueError(
            f"{size.name} holds {shape} values ({values / 2**20:.0f} Mi once decoded); the app "
            f"takes at most {MAX_UPLOAD_VALUES / 2**20:.0f} Mi per file. Crop or downsample it, "
            "or use neuralizer predict on the command line"
        )


def readable(error: BaseException, paths: list[str | Path]) -> str:
    """``error``'s message on one line, with upload folders cut from the file names (and from
    any name under them, such as the parts of a name read as joined channels)."""
    message = one_line(error)
    folders = {str(Path(p).parent) for p in paths if p} - {"."}
    for folder in sorted(folders, key=len, reverse=True):
        message = message.replace(folder + "/", "")
    return message
