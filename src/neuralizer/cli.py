"""The ``neuralizer`` command: it only parses arguments and calls the library."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from neuralizer.errors import USER_ERRORS, one_line

MAX_MEMORY_HELP = (
    "refuse work whose estimated peak memory exceeds this (e.g. 8G, 500M; 'inf': no check; "
    "default: the memory available at the start)"
)


def _convert_released(args: argparse.Namespace) -> int:
    from neuralizer.model.checkpoint import save_checkpoint
    from neuralizer.model.released import load_released_checkpoint, model_from_released

    state_dict = load_released_checkpoint(args.ckpt, trust_pickle=args.trust_pickle)
    model = model_from_released(state_dict)
    provenance = {"source": "authors' released checkpoint", "converted_from": Path(args.ckpt).name}
    save_checkpoint(args.output, model, provenance=provenance)
    print(f"wrote {args.output} ({model.config})")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from neuralizer.demo import run_demo

    model = Path(args.model) if args.model else None
    run_demo(Path(args.output), seed=args.seed, n_context=args.n_context, model=model)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from neuralizer.app import serve

    serve(args.host, args.port, args.model)
    return 0


def _train(args: argparse.Namespace) -> int:
    from neuralizer.model.limits import parse_memory
    from neuralizer.train import TrainConfig, train

    config = TrainConfig.from_file(args.config)
    if args.run_dir:
        config = TrainConfig.from_dict({**config.to_dict(), "run_dir": args.run_dir})
    progress = train(config, resume=args.resume, max_memory=parse_memory(args.max_memory))
    print(
        f"stopped at step {progress.step}; best validation loss {progress.best_val:.4f} "
        f"at step {progress.best_step}; files in {config.run_dir}"
    )
    return 0


def _plot_log(args: argparse.Namespace) -> int:
    from neuralizer.train.plot import describe_log, plot_log

    records = plot_log(args.log, args.output)
    print(f"wrote {args.output}")
    print(describe_log(args.log, records))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from neuralizer.evaluate import EvalConfig, run

    for path in args.config:
        config = EvalConfig.from_file(path)
        computed = run(config, methods=args.methods, tasks=args.tasks)
        print(f"{path}: {len(computed)} new rows in {config.output}")
        if args.examples:
            from neuralizer.evaluate.examples import plot_examples

            image = Path(args.examples) / f"{config.name}-examples.png"
            plot_examples(config, image, args.methods or ())
            print(f"wrote {image}")
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
    demo.add_argument("--n-context", type=int, default=4, help="examples per task (1-16)")
    demo.add_argument("--model", help="a checkpoint to use instead of the shipped model")
    demo.set_defaults(func=_demo)

    serve = commands.add_parser(
        "serve", help="start the local web app (upload a scan and examples, see the result)"
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: this computer only)"
    )
    serve.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    serve.add_argument(
        "--model",
        help="checkpoint (.safetensors); default: the shipped model (without its weights file, "
        "an untrained network, as the page says)",
    )
    serve.set_defaults(func=_serve)

    train = commands.add_parser("train", help="train a model (also under torchrun)")
    train.add_argument("config", help="JSON file of TrainConfig fields")
    train.add_argument("--resume", action="store_true", help="continue the run in run_dir")
    train.add_argument("--run-dir", help="override the config's run_dir")
    train.add_argument("--max-memory", help=MAX_MEMORY_HELP)
    train.set_defaults(func=_train)

    plot = commands.add_parser("plot-log", help="plot loss and validation curves of a run")
    plot.add_argument("log", help="the run's log.jsonl")
    plot.add_argument("-o", "--output", required=True, help="output PNG")
    plot.set_defaults(func=_plot_log)

    evaluate = commands.add_parser(
        "evaluate", help="run evaluation configurations (resumable: finished rows are skipped)"
    )
    evaluate.add_argument("config", nargs="+", help="JSON files of EvalConfig fields")
    evaluate.add_argument("--methods", nargs="+", help="only these of the config's methods")
    evaluate.add_argument("--tasks", nargs="+", help="only these of the config's tasks")
    evaluate.add_argument(
        "--examples",
        metavar="FOLDER",
        help="also save <FOLDER>/<name>-examples.png (one prediction per task and method)",
    )
    evaluate.set_defaults(func=_evaluate)

    from neuralizer.data.cli import add_data_commands
    from neuralizer.tasks.cli import add_task_commands

    add_task_commands(add_data_commands(commands))

    from neuralizer.infer.cli import add_predict_command

    add_predict_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except USER_ERRORS as error:
        print(f"neuralizer {args.command}: error: {one_line(error)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
