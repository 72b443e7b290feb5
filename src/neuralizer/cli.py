"""The ``neuralizer`` command: it only parses arguments and calls the library."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

USER_ERRORS = (ValueError, FileNotFoundError, PermissionError, IsADirectoryError)


def _convert_released(args: argparse.Namespace) -> int:
    from neuralizer.model.checkpoint import save_checkpoint
    from neuralizer.model.network import Neuralizer
    from neuralizer.model.released import load_released_checkpoint

    state_dict = load_released_checkpoint(args.ckpt, trust_pickle=args.trust_pickle)
    model = Neuralizer.from_released_state_dict(state_dict)
    provenance = {"source": "authors' released checkpoint", "converted_from": Path(args.ckpt).name}
    save_checkpoint(args.output, model, provenance=provenance)
    print(f"wrote {args.output} ({model.config})")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from neuralizer.demo import run_demo

    run_demo(Path(args.output), seed=args.seed)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neuralizer", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    convert = commands.add_parser(
        "convert-released", help="convert the authors' .ckpt into a neuralizer checkpoint"
    )
    convert.add_argument("ckpt", help="the authors' PyTorch-Lightning checkpoint (.ckpt)")
    convert.add_argument("-o", "--output", required=True, help="output .safetensors file")
    convert.add_argument(
        "--trust-pickle",
        action="store_true",
        help="read the file even if it holds arbitrary pickled objects (can run code: only for "
        "files from a source you trust)",
    )
    convert.set_defaults(func=_convert_released)

    demo = commands.add_parser("demo", help="run the demo on embedded data")
    demo.add_argument("-o", "--output", default="demo-output", help="output folder")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_demo)

    from neuralizer.infer.cli import add_predict_command

    add_predict_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except USER_ERRORS as error:
        print(f"neuralizer {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
