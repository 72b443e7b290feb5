"""``neuralizer predict``: argument parsing and the run of one target or of a folder of targets.

Every check of the user's files runs before the model is loaded; user errors raise ValueError or
FileNotFoundError, which the main CLI turns into a one-line message and exit status 2. Outputs are
written atomically, so a failed run leaves no partial file.
"""

from __future__ import annotations

import argparse
import glob
import sys
from dataclasses import dataclass
from pathlib import Path

from neuralizer.infer.io import SUFFIXES, Loaded, check_output_path, read_input, suffix


def add_predict_command(commands: argparse._SubParsersAction) -> None:
    """Register ``predict`` on the main parser's sub-commands."""
    p = commands.add_parser(
        "predict",
        help="predict a result for a scan (or a folder of scans) from a few example pairs",
        description="Solve a task on TARGET from example input/output pairs (or a --preset).",
    )
    p.add_argument(
        "-i", "--input", required=True, help="target file (a+b joins channels) or folder"
    )
    p.add_argument(
        "-o", "--output", required=True, help="output file (format from extension) or folder"
    )
    p.add_argument(
        "--context-in", nargs="+", default=[], metavar="FILE", help="example inputs (globs ok)"
    )
    p.add_argument(
        "--context-out", nargs="+", default=[], metavar="FILE", help="example outputs, same order"
    )
    p.add_argument(
        "--preset",
        help="built-in examples instead of --context-in/out: skullstrip, white-matter, "
        "grey-matter, hippocampus, thalamus, denoise",
    )
    p.add_argument("--n-context", type=int, default=4, help="context pairs a preset supplies")
    p.add_argument(
        "--uncertainty", help="also write the s.d. across ensemble passes (file or folder)"
    )
    p.add_argument("--probabilities", help="also write segmentation probabilities (file or folder)")
    p.add_argument("--qc", help="write a PNG overlay of the result on the target (file or folder)")
    p.add_argument("--ensemble", type=int, default=1, help="K bootstrap passes (default 1)")
    p.add_argument("--task", default="auto", choices=("auto", "segmentation", "image"))
    p.add_argument("--labels", nargs="+", help="label values to segment from label maps, or 'all'")
    p.add_argument("--align", default="affine", choices=("affine", "none"))
    p.add_argument(
        "--axis", default="coronal", choices=("coronal", "axial", "sagittal", "all"),
        help="slice direction of volumes; all: the three in turn, averaged (3x the time)",
    )  # fmt: skip
    p.add_argument("--spacing", type=float, help="pixel size in mm of 2D images (default 1)")
    p.add_argument("--model", help="checkpoint (.safetensors); default: the shipped model")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--threads", type=int, help="CPU threads for torch")
    p.add_argument("--batch-size", type=int, default=8, help="slices per forward pass")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--max-memory",
        help="refuse a forward pass whose estimated peak memory exceeds this (e.g. 8G, 500M; "
        "'inf': no check; default: the memory available at the time)",
    )
    p.set_defaults(func=run_predict)


def expand(patterns: list[str]) -> list[str]:
    """Expand globs (sorted); ``a+b`` specs and plain names pass through unchanged."""
    out: list[str] = []
    for pattern in patterns:
        if "+" not in pattern and any(ch in pattern for ch in "*?["):
            matches = sorted(glob.glob(pattern))
            if not matches:
                raise FileNotFoundError(f"{pattern}: no file matches")
            out += matches
        else:
            out.append(pattern)
    return out


def _labels(values: list[str] | None) -> list[int] | str | None:
    if values is None:
        return None
    if values == ["all"]:
        return "all"
    try:
        return [int(v) for v in values]
    except ValueError:
        raise ValueError(f"--labels takes integers or 'all', got {' '.join(values)}") from None


@dataclass(frozen=True)
class Context:
    """The loaded example pairs (2D: arrays; 3D: volumes) and how to call the library."""

    context_in: list[Loaded]
    context_out: list[Loaded]
    volumetric: bool
    align: str


def load_context(args: argparse.Namespace) -> Context:
    """Read and check the examples (files or a preset); no model is touched."""
    if args.preset:
        if args.context_in or args.context_out:
            raise ValueError("give either --preset or --context-in/--context-out, not both")
        from neuralizer.infer.presets import preset_context

        c_in, c_out = preset_context(args.preset, args.n_context)
        return Context(c_in, c_out, True, args.align)
    c_in = [read_input(p) for p in expand(args.context_in)]
    c_out = [read_input(p) for p in expand(args.context_out)]
    from neuralizer.infer.checks import check_context

    check_context(len(c_in), len(c_out))
    kinds = {c.image is not None for c in c_in + c_out}
    if len(kinds) > 1:
        raise ValueError("the context mixes NIfTI volumes and 2D files; use one kind")
    return Context(c_in, c_out, kinds.pop(), args.align)


def precheck(args: argparse.Namespace, target: Loaded, context: Context) -> None:
    """Every check of the user's data, without torch (so bad input fails within a second)."""
    from neuralizer.infer.checks import channels_2d, choose_alignment, validate_volumes
    from neuralizer.infer.outputs import plan_outputs

    if (target.image is not None) != context.volumetric:
        raise ValueError(
            f"{target.name} is {'a volume' if target.image is not None else '2D'} but the context "
            f"is {'volumes' if context.volumetric else '2D'}; give the same kind"
        )
    c_in, c_out = context.context_in, context.context_out
    if context.volumetric:
        validate_volumes(target, c_in, c_out, context.align)
        choose_alignment(context.align)
    else:
        channels_2d(target.data, [c.data for c in c_in], [c.data for c in c_out])
    plan_outputs(args.task, _labels(args.labels), [c.data for c in c_out])


def predict_file(args: argparse.Namespace, target: Loaded, context: Context, model, progress: bool):
    """The :class:`PredictResult` for one loaded target (checked first, then predicted)."""
    precheck(args, target, context)
    import neuralizer.infer as infer

    common = dict(
        model=model, task=args.task, labels=_labels(args.labels), ensemble=args.ensemble,
        seed=args.seed, device=args.device, max_memory=args.max_memory,
    )  # fmt: skip
    if context.volumetric:
        return infer.predict_volume(
            target, context.context_in, context.context_out, axis=args.axis, align=context.align,
            batch_size=args.batch_size, progress=progress, **common,
        )  # fmt: skip
    return infer.predict(
        target.data, [c.data for c in context.context_in], [c.data for c in context.context_out],
        spacing=args.spacing, **common,
    )  # fmt: skip


def write_result(result, target: Loaded, output: Path, extras: dict[str, Path | None]) -> None:
    """The optional uncertainty/probabilities/QC files, then the prediction, each atomically
    (the prediction last: folder mode takes an existing prediction for a finished target)."""
    from neuralizer.infer.io import write_output

    for key in ("uncertainty", "probabilities"):
        path, data = extras.get(key), getattr(result, key)
        if path is not None and data is not None:
            write_output(path, data)
        elif path is not None:
            print(f"note: a {result.task} task has no {key}; {path} not written", file=sys.stderr)
    if extras.get("qc") is not None:
        from neuralizer.infer.qc import save_qc

        save_qc(extras["qc"], target, result)
    write_output(output, result.prediction)


def _check_common(args: argparse.Namespace) -> None:
    if args.ensemble < 1:
        raise ValueError(f"--ensemble must be at least 1, got {args.ensemble}")
    if args.uncertainty and args.ensemble < 2:
        raise ValueError("--uncertainty is the spread across passes: it needs --ensemble K ≥ 2")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be at least 1, got {args.threads}")
    if args.spacing is not None and not args.spacing > 0:
        raise ValueError(f"--spacing must be a positive number of mm, got {args.spacing}")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.max_memory is not None:  # imports torch: only when given
        from neuralizer.model.limits import parse_memory

        parse_memory(args.max_memory)  # an unreadable size fails before any file is read


def run_predict(args: argparse.Namespace) -> int:
    _check_common(args)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    if Path(args.input).is_dir():
        from neuralizer.infer.folder import run_folder

        return run_folder(args)
    output = Path(args.output)
    check_output_path(output)
    for key in ("uncertainty", "probabilities"):
        if getattr(args, key):
            check_output_path(getattr(args, key))
    if args.qc and suffix(args.qc) != ".png":
        raise ValueError(f"--qc writes a PNG picture: {args.qc} should end in .png")
    target = read_input(args.input)
    context = load_context(args)
    result = predict_file(args, target, context, args.model, progress=sys.stderr.isatty())
    extras = {k: Path(getattr(args, k)) if getattr(args, k) else None
              for k in ("uncertainty", "probabilities", "qc")}  # fmt: skip
    write_result(result, target, output, extras)
    print(f"wrote {output} ({result.task}; " + "; ".join(result.steps) + ")")
    return 0


__all__ = ["SUFFIXES", "add_predict_command", "run_predict"]
