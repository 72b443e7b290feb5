"""Which part of test-time ensembling costs accuracy? Experiment 2's task instances at n = 8.

    .venv/bin/python scripts/ensemble_forms.py

Prints each task's mean score (Dice or PSNR over the 4 targets) for one pass, the ensemble as
predictions run it (4 passes: bootstrap draw of the context + a small affine on the target,
inverted on the output) and the bootstrap draw alone (the same 4 passes without the affine).
Shipped model, one thread, a fixed seed. Nothing is written.
"""

from __future__ import annotations

import torch

from neuralizer import load
from neuralizer.evaluate.config import EvalConfig
from neuralizer.evaluate.metrics import score
from neuralizer.evaluate.sets import build_instances
from neuralizer.infer.ensemble import EnsembleConfig, run_ensemble

N_CONTEXT, PASSES = 8, 4
FORMS = {
    "one pass": EnsembleConfig(passes=1),
    "bootstrap + affine": EnsembleConfig(passes=PASSES),
    "bootstrap only": EnsembleConfig(passes=PASSES, rotation_deg=0.0, scaling=0.0, translation=0.0),
}


def main() -> None:
    torch.set_num_threads(1)
    config = EvalConfig.from_file("configs/eval/exp2-context.json")
    model = load(config.models["neuralizer-seen"])
    print("| task | metric | " + " | ".join(FORMS) + " |")
    print("|---|---|" + "---|" * len(FORMS))
    for task in config.tasks:
        inst = build_instances(config, task, 0)[0]
        n_targets = inst.target_in.shape[0]
        context = [torch.from_numpy(a[:N_CONTEXT]).expand(n_targets, -1, -1, -1, -1)
                   for a in (inst.pool_in, inst.pool_out)]  # fmt: skip
        cells = []
        for form in FORMS.values():
            mean, _ = run_ensemble(
                model, torch.from_numpy(inst.target_in), *context, config=form,
                generator=torch.Generator().manual_seed(7), batch_size=4,
            )  # fmt: skip
            values = score(mean.numpy(), inst.target_out, inst.segmentation_like)
            cells.append(f"{values.mean():.3f}")
        metric = "dice" if inst.segmentation_like else "psnr"
        print(f"| {task} | {metric} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
