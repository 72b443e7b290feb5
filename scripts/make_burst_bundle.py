"""Make the bundle of a GPU burst: code, the run's state, the MNI anatomy and wheels, one folder.

    python scripts/make_burst_bundle.py configs/v2.json --output .burst [--wheel FILE.whl ...]

``scripts/gpu_burst.sh BUNDLE MINUTES OUT`` then resumes the run from the bundle on a machine
with no network and only Python, PyTorch, numpy, scipy, einops, safetensors and tqdm (no
nibabel, SimpleITK or atlas packages). The bundle holds:

- ``src/neuralizer``: the package, with the twenty people's label maps (not the shipped weights:
  a resumed run starts from its state);
- ``run/``: the run directory's files (``state.safetensors`` and the rest), as they are now;
- ``config.json``: the run's training config;
- ``anatomy/``: the MNI anatomy the run's subjects are made from, an anatomy bundle
  (:mod:`neuralizer.data.bundle`), when the run draws MNI-based subjects;
- ``wheels/``: the wheels given with ``--wheel`` (pure-Python packages the machine lacks);
- ``scripts/``: the burst's scripts; ``burst.json``: what was bundled, from which commit.

The bundle must stay within 40 MiB. When it lies in a git work tree (``.burst`` is ignored),
the device tool carries it beside the repository's files (``carry: [".burst"]``): the two
together must stay within the tool's 64 MiB, which is checked too. Either check failing removes
the bundle (exit status 1).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from safetensors import safe_open

from neuralizer.data.make import synth_config
from neuralizer.data.subjects import write_anatomy_bundle
from neuralizer.train import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
MIB = 2**20
#: The bundle's limit (issue "Model v2"), and what the device tool carries in all.
MAX_BUNDLE = 40 * MIB
MAX_CARRIED = 64 * MIB
RUN_FILES = ("state.safetensors", "latest.safetensors", "best.safetensors", "log.jsonl")
SCRIPTS = ("gpu_burst.sh", "gpu_burst.py")


def state_step(path: Path) -> int:
    """The step of a training state (its metadata only; no tensor is read)."""
    with safe_open(str(path), framework="pt") as state:
        return int(json.loads(state.metadata()["progress"])["step"])


def folder_size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def carried_size(bundle: Path) -> int | None:
    """Bytes the device tool sends: the work tree's files that git does not ignore, plus the
    bundle when git ignores it (it is carried then); None outside a git work tree."""
    listed = subprocess.run(
        ["git", "-C", str(bundle.parent), "ls-files", "-z", "--cached", "--others",
         "--exclude-standard", "--full-name"],
        capture_output=True,
    )  # fmt: skip
    top = subprocess.run(
        ["git", "-C", str(bundle.parent), "rev-parse", "--show-toplevel"],
        capture_output=True,
        text=True,
    )
    if listed.returncode or top.returncode:
        return None
    root = Path(top.stdout.strip())
    names = [n for n in listed.stdout.decode().split("\0") if n]
    tree = sum((root / n).stat().st_size for n in names if (root / n).is_file())
    ignored = subprocess.run(["git", "-C", str(root), "check-ignore", "-q", str(bundle)])
    return tree + (folder_size(bundle) if ignored.returncode == 0 else 0)


def _commit() -> str:
    result = subprocess.run(
        ["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True, text=True
    )
    return result.stdout.strip() or "unknown"


def build(cfg: TrainConfig, folder: Path, wheels: list[Path]) -> dict:
    """Write the bundle of run ``cfg`` into the empty ``folder``; returns its manifest."""
    run = Path(cfg.run_dir)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "weights")
    shutil.copytree(ROOT / "src" / "neuralizer", folder / "src" / "neuralizer", ignore=ignore)
    (folder / "scripts").mkdir()
    for name in SCRIPTS:
        shutil.copy2(ROOT / "scripts" / name, folder / "scripts" / name)
    (folder / "run").mkdir()
    for name in (*RUN_FILES, "config.json"):
        if (run / name).is_file():
            shutil.copy2(run / name, folder / "run" / name)
    (folder / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1) + "\n")
    if cfg.source.kind == "synth" and cfg.source.people_fraction < 1:
        write_anatomy_bundle(synth_config(cfg.source), folder / "anatomy")
    if wheels:
        (folder / "wheels").mkdir()
        for wheel in wheels:
            shutil.copy2(wheel, folder / "wheels" / wheel.name)
    manifest = {
        "run_dir": cfg.run_dir,
        "step": state_step(folder / "run" / "state.safetensors"),
        "commit": _commit(),
        "made": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "wheels": [w.name for w in wheels],
    }
    (folder / "burst.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def _check_arguments(args: argparse.Namespace) -> TrainConfig:
    """Every check of the user's input, before any copying (ValueError, one line)."""
    cfg = TrainConfig.from_file(args.config)
    if cfg.source.kind == "dataset":
        raise ValueError("a dataset source's scans do not travel in a burst bundle")
    state = Path(cfg.run_dir) / "state.safetensors"
    if not state.is_file():
        raise ValueError(f"{state} not found: a burst resumes a run (run it from the repo root)")
    for wheel in args.wheel:
        if wheel.suffix != ".whl" or not wheel.is_file():
            raise ValueError(f"{wheel} is not a wheel file (.whl)")
    output = args.output
    if output.exists() and any(output.iterdir()) and not (output / "burst.json").is_file():
        raise ValueError(f"{output} exists and is not a burst bundle: choose another --output")
    return cfg


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="the run's training config (JSON), e.g. configs/v2.json")
    parser.add_argument("--output", type=Path, default=Path(".burst"), help="default: .burst")
    parser.add_argument("--wheel", type=Path, action="append", default=[], help="a wheel to add")
    args = parser.parse_args()
    try:
        cfg = _check_arguments(args)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    output = args.output.resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        manifest = build(cfg, work, args.wheel)
        size = folder_size(work)
        parts = {p.name: folder_size(p) / MIB for p in sorted(work.iterdir()) if p.is_dir()}
        print(f"bundle of {cfg.run_dir} at step {manifest['step']}: {size / MIB:.1f} MiB (" +
              ", ".join(f"{k} {v:.1f}" for k, v in parts.items()) + ")")  # fmt: skip
        if size > MAX_BUNDLE:
            print(f"error: the bundle is over {MAX_BUNDLE // MIB} MiB", file=sys.stderr)
            return 1
        if output.exists():
            shutil.rmtree(output)
        work.rename(output)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    carried = carried_size(output)
    if carried is not None:
        print(f"the device tool would carry {carried / MIB:.1f} MiB with the repository's files "
              f"(limit {MAX_CARRIED // MIB} MiB)")  # fmt: skip
        if carried > MAX_CARRIED:
            shutil.rmtree(output)
            print("error: too much to carry: the bundle is removed", file=sys.stderr)
            return 1
    print(f"wrote {output}; run: scripts/gpu_burst.sh {args.output} MINUTES OUT")
    return 0


if __name__ == "__main__":
    sys.exit(main())
