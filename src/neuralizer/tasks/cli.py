"""``neuralizer data tasks``: the task gallery. Wire with ``add_task_commands(data_subparsers)``."""

from __future__ import annotations

import argparse


def gallery_source(name: str, n_subjects: int = 6):
    """The slice source the gallery draws from: "synth" (the data engine) or "phantom"."""
    from neuralizer.data.make import SourceConfig, make_source

    if name not in ("synth", "phantom"):
        raise ValueError(f"unknown source {name!r}; choose 'synth' or 'phantom'")
    return make_source(SourceConfig(kind=name, phantom_size=96), "train", n_subjects)


def run_tasks_gallery(args: argparse.Namespace) -> int:
    from neuralizer.tasks.gallery import save_gallery

    path = save_gallery(args.output, gallery_source(args.source), seed=args.seed)
    print(f"wrote {path}")
    return 0


def add_task_commands(subparsers) -> None:
    """Register ``tasks`` on the sub-parsers of the ``neuralizer data`` command group."""
    tasks = subparsers.add_parser(
        "tasks", help="draw every task and task augmentation into one PNG"
    )
    tasks.add_argument("-o", "--output", required=True, help="output PNG file")
    tasks.add_argument("--seed", type=int, default=0)
    tasks.add_argument(
        "--source",
        choices=("synth", "phantom"),
        default="synth",
        help="virtual subjects from the data engine (default) or the geometric test phantom",
    )
    tasks.set_defaults(func=run_tasks_gallery)
