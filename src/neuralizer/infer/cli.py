"""``neuralizer predict``: argument parsing; the runner (``infer/run.py``, ``infer/folder.py``)
does the work, on :class:`PredictOptions` (no library function takes the parsed arguments).

Every check of the user's files runs before the model is loaded; user errors raise ValueError or
FileNotFoundError, which the main CLI turns into a one-line message and exit status 2. Outputs are
written atomically, so a failed run leaves no partial file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from neuralizer.infer.dicom import is_dicom_folder
from neuralizer.infer.io import SUFFIXES, read_input
from neuralizer.infer.paths import Spec, check_name, exists, expand, group_channels, input_files
from neuralizer.infer.plan import DEFAULT_ADAPT_STEPS, Context, PredictOptions, load_context
from neuralizer.infer.resources import check_files
from neuralizer.infer.run import OutputFiles, run_one


def add_predict_command(commands: argparse._SubParsersAction) -> None:
    """Register ``predict`` on the main parser's sub-commands."""
    p = commands.add_parser(
        "predict",
        help="predict a result for a scan (or a folder of scans) from a few example pairs",
        description="Solve a task on TARGET from example input/output pairs (or a --preset).",
    )
    p.add_argument(
        "-i", "--input", nargs="+", metavar="FILE",
        help="target file, DICOM series folder or folder of targets; 'A + B' (a lone +) joins "
        "files into the channels of one input",
    )  # fmt: skip
    p.add_argument(
        "-o", "--output", required=True, help="output file (format from extension) or folder"
    )
    p.add_argument(
        "--context-in", nargs="+", default=[], metavar="FILE",
        help="example inputs (globs ok; 'A + B' joins channels)",
    )  # fmt: skip
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
    p.add_argument(
        "--statistics", metavar="FILE.tsv",
        help="write the volume (mL) of every structure of every target, with QC flags (a folder "
        "or BIDS dataset: one table for the cohort)",
    )  # fmt: skip
    p.add_argument(
        "--report", metavar="FILE.html",
        help="write one self-contained HTML page: per target an overlay mosaic, the uncertainty, "
        "the volumes and QC flags, sortable",
    )  # fmt: skip
    p.add_argument(
        "--label-names", metavar="FILE.tsv",
        help="names of label values for --statistics/--report (columns index, name; a BIDS "
        "dseg.tsv)",
    )  # fmt: skip
    bids = p.add_argument_group("BIDS datasets (neuralizer.infer.bids)")
    bids.add_argument(
        "--bids", metavar="BIDS_DIR",
        help="predict the files of a BIDS dataset (instead of -i); -o is the derivatives folder "
        "(outside BIDS_DIR, or BIDS_DIR/derivatives/neuralizer)",
    )  # fmt: skip
    bids.add_argument(
        "--target-filter", nargs="+", default=[], metavar="KEY=VALUE",
        help="which files are targets (default datatype=anat suffix=T1w), e.g. suffix=T2w ses=01",
    )  # fmt: skip
    bids.add_argument("--participant-label", nargs="+", metavar="LABEL",
                      help="only these subjects (with or without sub-)")  # fmt: skip
    bids.add_argument(
        "--examples-from", metavar="DERIV_DIR",
        help="a derivatives folder of hand labels: each is an example, paired with its subject's "
        "image matching --target-filter",
    )  # fmt: skip
    bids.add_argument(
        "--examples-filter", nargs="+", default=[], metavar="KEY=VALUE",
        help="which files of --examples-from are labels (default suffix=mask,dseg), "
        "e.g. desc=brain",
    )  # fmt: skip
    bids.add_argument(
        "--desc", help="the desc- label of the outputs (default: the hand labels', the preset's)"
    )
    p.add_argument("--ensemble", type=int, default=1, help="K bootstrap passes (default 1)")
    p.add_argument(
        "--adapt", type=int, nargs="?", const=DEFAULT_ADAPT_STEPS, default=0, metavar="K",
        help="first fine-tune a copy of the model for K steps on the example pairs (2 or more); "
        f"--adapt alone: K = {DEFAULT_ADAPT_STEPS}; default: no adaptation",
    )  # fmt: skip
    p.add_argument("--task", default="auto", choices=("auto", "segmentation", "image"))
    p.add_argument("--labels", nargs="+", help="label values to segment from label maps, or 'all'")
    p.add_argument(
        "--align", default="affine", choices=("affine", "deformable", "none"),
        help="affine (default): register the target and each example once to MNI152 and predict "
        "on its canonical slices; deformable: then also register each example deformably "
        "(B-spline) to the target, L more registrations per target (per view with --axis all), "
        "minutes on a CPU; none: the inputs already share one world space (no registration)",
    )  # fmt: skip
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


def options_from(args: argparse.Namespace) -> PredictOptions:
    """The checked :class:`PredictOptions` of parsed ``predict`` arguments."""
    return PredictOptions(
        task=args.task, labels=args.labels, ensemble=args.ensemble, axis=args.axis,
        align=args.align, spacing=args.spacing, seed=args.seed, device=args.device,
        batch_size=args.batch_size, max_memory=args.max_memory, adapt=args.adapt,
    )  # fmt: skip


def _check_common(args: argparse.Namespace) -> PredictOptions:
    """The options (checked as they are made), then what only the command asks."""
    options = options_from(args)
    if args.uncertainty and options.ensemble < 2:
        raise ValueError("--uncertainty is the spread across passes: it needs --ensemble K ≥ 2")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be at least 1, got {args.threads}")
    return options


def _one_input(tokens: list[str]) -> Spec:
    """The target of ``-i`` (one file, a folder, or files joined by lone ``+``)."""
    specs = group_channels(tokens)
    if len(specs) != 1:
        raise ValueError(
            f"-i takes one target (or a folder), got {len(specs)}: join channels with a lone +"
        )
    return specs[0]


def run_predict(args: argparse.Namespace) -> int:
    options = _check_common(args)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    extras = {key: None if getattr(args, key) is None else Path(getattr(args, key))
              for key in ("uncertainty", "probabilities", "qc")}  # fmt: skip
    cohort = _cohort(args)
    if args.bids is not None:
        return _run_bids(args, options, cohort)
    if not args.input:
        raise ValueError("give a target: -i FILE (or a folder), or --bids BIDS_DIR")
    target_spec = _one_input(args.input)
    context_in = expand(group_channels(args.context_in))
    context_out = expand(group_channels(args.context_out))
    if isinstance(target_spec, str) and not exists(target_spec):
        check_name(target_spec, "input")
    if (
        isinstance(target_spec, str)
        and Path(target_spec).is_dir()
        and not is_dicom_folder(target_spec)
    ):
        from neuralizer.infer.folder import check_folders, run_folder

        targets = check_folders(Path(target_spec), Path(args.output), extras)
        context = _context(args, options, context_in, context_out)
        cohort.title = f"neuralizer: {Path(target_spec).resolve().name}"
        cohort.describe(context, options, args.preset and f"preset {args.preset}")
        status = run_folder(targets, Path(args.output), context, options, extras, args.model,
                            cohort=cohort)  # fmt: skip
        if cohort.wanted:
            cohort.finish()
        return status
    files = OutputFiles(Path(args.output), **extras)
    specs = [target_spec, *context_in, *context_out]
    files.check([path for spec in specs for path in input_files(spec)])  # before any reading
    check_files(target_spec, context_in, context_out, args.model, options)
    target = read_input(target_spec)
    context = _context(args, options, context_in, context_out)
    _, result = run_one(target, context, options, files, args.model,
                        progress=sys.stderr.isatty())  # fmt: skip
    if cohort.wanted:
        cohort.describe(context, options, args.preset and f"preset {args.preset}")
        affine = None if target.image is None else target.image.affine
        cohort.add(Path(target.name).name, target.data, affine, result, [str(files.prediction)])
        cohort.finish()
    if result.adapt_seconds is not None:
        print(f"adaptation to the examples took {result.adapt_seconds:.1f} s", file=sys.stderr)
    print(f"wrote {files.prediction} ({result.task}; " + "; ".join(result.steps) + ")")
    return 0


def _cohort(args: argparse.Namespace):
    """The :class:`~neuralizer.infer.cohort.Cohort` of ``--statistics``/``--report``, checked."""
    from neuralizer.infer.cohort import Cohort, check_cohort_files
    from neuralizer.infer.statistics import read_label_names

    check_cohort_files(args.statistics, args.report, args.label_names)
    names = read_label_names(args.label_names) if args.label_names else {}
    return Cohort(
        statistics=None if args.statistics is None else Path(args.statistics),
        report=None if args.report is None else Path(args.report),
        names=names,
        structure=args.preset or "mask",
    )


def _run_bids(args: argparse.Namespace, options: PredictOptions, cohort) -> int:
    from neuralizer.infer.bids import check_output_folder, plan_bids, run_bids

    if args.input:
        raise ValueError("give either -i or --bids, not both")
    for key in ("uncertainty", "probabilities", "qc"):
        if getattr(args, key) is not None:
            raise ValueError(f"--{key} names a file; with --bids every output goes into -o")
    out_dir = Path(args.output)
    check_output_folder(Path(args.bids), out_dir, cohort.statistics, cohort.report)
    job = plan_bids(
        Path(args.bids), out_dir, target_filter=args.target_filter,
        participants=args.participant_label,
        examples_dir=None if args.examples_from is None else Path(args.examples_from),
        examples_filter=args.examples_filter, context_in=expand(group_channels(args.context_in)),
        context_out=expand(group_channels(args.context_out)), desc=args.desc, preset=args.preset,
    )  # fmt: skip
    context = load_context(options, job.context_in, job.context_out, preset=args.preset,
                           n_context=args.n_context)  # fmt: skip
    if context.outputs.kind == "labels":
        given = cohort.names or job.names
        job = job.with_names({v: given.get(v, f"label-{v}") for v in context.outputs.label_values})
    cohort.names = cohort.names or job.names
    cohort.structure = job.desc
    cohort.title = f"neuralizer {job.desc}: {Path(args.bids).resolve().name}"
    cohort.describe(context, options, args.preset and f"preset {args.preset}")
    cohort.statistics = cohort.statistics or out_dir / f"desc-{job.desc}_volumes.tsv"
    cohort.report = cohort.report or out_dir / f"desc-{job.desc}_report.html"
    status = run_bids(job, context, options, args.model, cohort)
    cohort.finish()
    return status


def _context(args: argparse.Namespace, options: PredictOptions, context_in: list[Spec],
             context_out: list[Spec]) -> Context:  # fmt: skip
    return load_context(options, context_in, context_out, preset=args.preset,
                        n_context=args.n_context)  # fmt: skip


__all__ = ["SUFFIXES", "add_predict_command", "options_from", "run_predict"]
