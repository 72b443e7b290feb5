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

import argparse
import sys
from glob import escape as glob_escape
from pathlib import Path

from neuralizer.infer.io import SUFFIXES, read_input, suffix

USER_ERRORS = (ValueError, FileNotFoundError, PermissionError, IsADirectoryError)


def folder_targets(folder: Path) -> list[Path]:
    """Files of ``folder`` with a supported extension, sorted (hidden files skipped)."""
    files = [
        p for p in sorted(folder.iterdir())
        if p.is_file() and not p.name.startswith(".") and suffix(p) in SUFFIXES
    ]  # fmt: skip
    if not files:
        raise FileNotFoundError(f"{folder} holds no {', '.join(SUFFIXES)} files")
    return files


def inside(folder: Path, name: str) -> Path:
    """``folder / name`` after checking that it cannot escape ``folder``."""
    path = (folder / Path(name).name).resolve()
    if path.parent != folder.resolve():
        raise ValueError(f"output name {name!r} would leave the output folder")
    return path


def _remove_stale_temporaries(folders: list[Path], names: list[str]) -> None:
    """Delete ``.NAME.*.tmp`` files (``write_atomically``'s) of our outputs left by a kill."""
    for folder in folders:
        for name in names:
            for temp in folder.glob(f".{glob_escape(name)}.*.tmp"):
                temp.unlink(missing_ok=True)


def _extra_folders(args: argparse.Namespace, in_dir: Path) -> dict[str, Path | None]:
    extras: dict[str, Path | None] = {}
    for key in ("uncertainty", "probabilities", "qc"):
        value = getattr(args, key)
        extras[key] = None if value is None else Path(value)
        if value is not None and extras[key].resolve() == in_dir.resolve():
            raise ValueError(f"--{key} folder must differ from the input folder")
    return extras


def _named(extras: dict[str, Path | None], name: str) -> dict[str, Path | None]:
    out: dict[str, Path | None] = {}
    for key, folder in extras.items():
        if folder is None:
            out[key] = None
        else:
            folder.mkdir(parents=True, exist_ok=True)
            out[key] = (
                inside(folder, Path(name).with_suffix("").stem + ".png")
                if key == "qc"
                else (inside(folder, name))
            )
    return out


def run_folder(args: argparse.Namespace) -> int:
    """Predict every file of ``args.input`` into ``args.output``; 1 if any failed, else 0."""
    from tqdm.auto import tqdm

    from neuralizer.infer.api import resolve_model
    from neuralizer.infer.cli import _labels, load_context, predict_file, write_result
    from neuralizer.infer.outputs import plan_outputs

    in_dir, out_dir = Path(args.input), Path(args.output)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir} is a file; with a folder as input, -o must be a folder")
    if out_dir.resolve() == in_dir.resolve():
        raise ValueError("the output folder must differ from the input folder")
    targets = folder_targets(in_dir)
    extras = _extra_folders(args, in_dir)
    context = load_context(args)
    plan_outputs(args.task, _labels(args.labels), [c.data for c in context.context_out])
    model = resolve_model(args.model, args.device)  # context checked, targets listed
    out_dir.mkdir(parents=True, exist_ok=True)
    names = [p.name for p in targets] + [
        Path(p.name).with_suffix("").stem + ".png" for p in targets
    ]
    _remove_stale_temporaries([out_dir, *(f for f in extras.values() if f is not None)], names)
    failed: list[tuple[str, str]] = []
    skipped = 0
    for path in tqdm(targets, unit="scan", disable=not sys.stderr.isatty()):
        try:
            output = inside(out_dir, path.name)
            companions = _named(extras, path.name)
            if output.is_file():
                skipped += 1
                continue
            target = read_input(path)
            result = predict_file(args, target, context, model, progress=False)
            write_result(result, target, output, companions)
        except USER_ERRORS as error:
            failed.append((path.name, str(error)))
    done = len(targets) - len(failed) - skipped
    print(f"predicted {done} of {len(targets)} files into {out_dir}")
    if skipped:
        print(f"skipped {skipped} whose outputs exist already (delete them to predict again)")
    for name, reason in failed:
        print(f"failed: {name}: {reason}", file=sys.stderr)
    return 1 if failed else 0
