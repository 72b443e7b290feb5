"""Folder mode of ``neuralizer predict``: many targets, one context, one model load.

A bad target does not stop the run: it is reported and skipped, the others are processed, a
summary is printed and the exit status is 1 if any target failed. Output names are the inputs'
file names inside the output folder, so no output can land outside it (a symlink there that points
elsewhere fails that target).

Rerunning after a crash or a kill skips targets whose prediction exists and redoes the others:
every file is written to a temporary file and renamed, the prediction after its uncertainty,
probabilities and QC picture, so a prediction that exists is whole and so are its companions.
Temporary files a kill left behind are removed at the start.
"""

from __future__ import annotations

import sys
from pathlib import Path

from neuralizer.errors import USER_ERRORS
from neuralizer.files import remove_stale_temporaries
from neuralizer.infer.io import SUFFIXES, read_input, suffix
from neuralizer.infer.plan import Context, PredictOptions
from neuralizer.infer.run import OutputFiles, run_one


def folder_targets(folder: Path) -> list[Path]:
    """Files of ``folder`` with a supported extension and its folders that hold a DICOM series,
    sorted (hidden ones skipped)."""
    from neuralizer.infer.dicom import is_dicom_folder

    files = [
        p for p in sorted(folder.iterdir())
        if not p.name.startswith(".")
        and ((p.is_file() and suffix(p) in SUFFIXES) or is_dicom_folder(p))
    ]  # fmt: skip
    if not files:
        raise FileNotFoundError(f"{folder} holds no {', '.join(SUFFIXES)} files")
    return files


def output_name(target: Path) -> str:
    """The file name of a target's results: its own, or ``<folder>.nii.gz`` for a DICOM series."""
    return f"{target.name}.nii.gz" if target.is_dir() else target.name


def inside(folder: Path, name: str) -> Path:
    """``folder / name`` after checking that it cannot escape ``folder``."""
    path = (folder / Path(name).name).resolve()
    if path.parent != folder.resolve():
        raise ValueError(f"output name {name!r} would leave the output folder")
    return path


def check_folders(in_dir: Path, out_dir: Path, extras: dict[str, Path | None]) -> list[Path]:
    """The targets of ``in_dir``, after checking that no output folder is a file or the input."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir} is a file; with a folder as input, -o must be a folder")
    if out_dir.resolve() == in_dir.resolve():
        raise ValueError("the output folder must differ from the input folder")
    targets = folder_targets(in_dir)
    for key, folder in extras.items():
        if folder is not None and folder.resolve() == in_dir.resolve():
            raise ValueError(f"--{key} folder must differ from the input folder")
    return targets


def _named(extras: dict[str, Path | None], name: str) -> dict[str, Path | None]:
    out: dict[str, Path | None] = {}
    for key, folder in extras.items():
        if folder is None:
            out[key] = None
        else:
            folder.mkdir(parents=True, exist_ok=True)
            qc_name = Path(name).with_suffix("").stem + ".png"
            out[key] = inside(folder, qc_name if key == "qc" else name)
    return out


def run_folder(
    targets: list[Path],
    out_dir: Path,
    context: Context,
    options: PredictOptions,
    extras: dict[str, Path | None],
    model,
    *,
    cohort=None,
) -> int:
    """Predict every file of ``targets`` (from :func:`check_folders`) into ``out_dir``, with
    companions in the ``extras`` folders; 1 if any failed, else 0. A
    :class:`~neuralizer.infer.cohort.Cohort` given as ``cohort`` summarises every target (the
    caller writes its files)."""
    from tqdm.auto import tqdm

    from neuralizer.infer.engine import resolve_model

    model = resolve_model(model, options.device)  # context checked, targets listed
    out_dir.mkdir(parents=True, exist_ok=True)
    names = [output_name(p) for p in targets] + [
        Path(output_name(p)).with_suffix("").stem + ".png" for p in targets
    ]
    for folder in [out_dir, *(f for f in extras.values() if f is not None)]:
        remove_stale_temporaries(folder, names)  # left by a kill mid-write
    failed: list[tuple[str, str]] = []
    skipped = 0
    for path in tqdm(targets, unit="scan", disable=not sys.stderr.isatty()):
        try:
            name = output_name(path)
            files = OutputFiles(inside(out_dir, name), **_named(extras, name))
            if files.prediction.is_file():
                skipped += 1
                if cohort is not None and cohort.wanted:
                    cohort.add_files(path.name, read_input(path), files.prediction,
                                     files.uncertainty, context.outputs)  # fmt: skip
                continue
            loaded, result = run_one(path, context, options, files, model)
            if result.alignment is not None:  # one line per target: did its registration hold?
                tqdm.write(f"{path.name}: {result.alignment.describe()}")
            if cohort is not None and cohort.wanted:
                affine = None if loaded.image is None else loaded.image.affine
                cohort.add(path.name, loaded.data, affine, result, [str(files.prediction)])
        except USER_ERRORS as error:
            failed.append((path.name, str(error)))
            if cohort is not None:
                cohort.fail(path.name, str(error))
    done = len(targets) - len(failed) - skipped
    print(f"predicted {done} of {len(targets)} files into {out_dir}")
    if skipped:
        print(f"skipped {skipped} whose outputs exist already (delete them to predict again)")
    for name, reason in failed:
        print(f"failed: {name}: {reason}", file=sys.stderr)
    return 1 if failed else 0
