"""Invariance of predictions to the head's pose (issue 32), the full check.

For test people of the real-anatomy data, the brain mask (skull stripping of the head) and the
thalami (of the skull-stripped brain) are predicted with the shipped model from the scan as it
lies and from a copy moved by 15° and 20° about two axes (and shifted);
the moved copy's prediction, carried back through the motion, is compared with the still one's
(goal: Dice >= 0.95; :mod:`neuralizer.evaluate.invariance`). The suite keeps one person and one
task (tests/infer/test_invariance.py).

    python scripts/invariance_check.py --people 2 --threads 2

Prints one line per person and task; the worst goes in docs/reliability.md.
"""

from __future__ import annotations

import argparse

import torch

from neuralizer.data.people import PEOPLE_SPLITS
from neuralizer.evaluate.invariance import TASKS, check_invariance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=1, help="test people, from the 2nd")
    parser.add_argument("--n-context", type=int, default=2, help="example pairs per task")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import neuralizer

    model = neuralizer.load()
    worst = None
    for person in PEOPLE_SPLITS["test"][1 : 1 + args.people]:
        for task in TASKS:
            found = check_invariance(task, person, n_context=args.n_context, model=model)
            print(f"person {person} {task}: Dice {found.dice:.3f}, rotation found "
                  f"{found.still_rotation_deg:.1f}° still, {found.moved_rotation_deg:.1f}° moved, "
                  f"{found.seconds:.0f} s", flush=True)  # fmt: skip
            if worst is None or found.dice < worst[1].dice:
                worst = (person, found)
    if worst is not None:
        print(f"lowest Dice {worst[1].dice:.3f} (person {worst[0]}, {worst[1].task})")


if __name__ == "__main__":
    main()
