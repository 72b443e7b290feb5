"""The smoke evaluation: a tiny untrained Neuralizer on phantoms, every method, in seconds.

    python -m neuralizer.evaluate.smoke   # writes runs/smoke/tiny.safetensors, then evaluates
                                          # configs/eval/smoke.json into docs/results/smoke.csv
                                          # and docs/img/smoke-examples.png

It checks the machinery end to end (the test suite runs the same configuration); its numbers say
nothing about model quality.
"""

from __future__ import annotations

from pathlib import Path

from neuralizer.model import ModelConfig, save_checkpoint
from neuralizer.model.checkpoint import untrained

TINY = ModelConfig(channels=4, stages=3)


def make_tiny_model(path: str | Path, seed: int = 0) -> Path:
    """Save an untrained c=4, 3-stage Neuralizer (weights a pure function of ``seed``)."""
    save_checkpoint(
        path, untrained(TINY, seed), provenance={"note": "untrained tiny model for the smoke run"}
    )
    return Path(path)


def main() -> int:
    from neuralizer.evaluate.config import EvalConfig
    from neuralizer.evaluate.run import run

    config = EvalConfig.from_file("configs/eval/smoke.json")
    for path in config.models.values():
        make_tiny_model(path)
    print(f"{len(run(config))} new rows in {config.output}")
    from neuralizer.evaluate.examples import plot_examples

    plot_examples(config, "docs/img/smoke-examples.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
