"""The ``neuralizer data`` sub-commands (parsing only; the work lives in the library)."""

from __future__ import annotations

import argparse
from pathlib import Path


def _import(args: argparse.Namespace) -> int:
    from neuralizer.data.importer import import_folder

    manifest = import_folder(
        Path(args.src), Path(args.output), kind=args.kind, voxel_size_mm=args.voxel_size_mm
    )
    for entry in manifest["subjects"]:
        print(f"{entry['id']}: {entry['kind']} -> {entry['image']} (QC: {entry['qc']})")
    print(f"wrote {Path(args.output) / 'manifest.json'}")
    return 0


def _import_label_maps(args: argparse.Namespace) -> int:
    from neuralizer.data.people import MIN_ALIGNMENT_DICE, PEOPLE_DIR, import_label_maps

    output = Path(args.output) if args.output else PEOPLE_DIR
    report = import_label_maps(Path(args.src), output, people=args.people, check=args.check)
    for number, entry in report.items():
        line = f"person {number:2d}: brain-mask Dice {entry['dice']:.3f} against MNI"
        if entry["failed"]:
            line += f" < {MIN_ALIGNMENT_DICE}: FAILED the alignment check, not used"
        elif "equal" in entry:
            line += f", {100 * entry['equal']:.3f} % of voxels equal to {output}"
        print(line)
    passed = [entry for entry in report.values() if not entry["failed"]]
    print(f"{len(report) - len(passed)} of {len(report)} people failed the alignment check")
    if args.check:
        worst = min((entry["equal"] for entry in passed), default=1.0)
        print(f"lowest agreement {100 * worst:.3f} %")
        return 0 if worst >= 0.999 else 1
    print(f"wrote {len(passed)} people to {output}")
    return 0


def _gallery(args: argparse.Namespace) -> int:
    from neuralizer.data.gallery import make_gallery, make_people_gallery

    if args.people:
        make_people_gallery(Path(args.output))
    else:
        make_gallery(
            Path(args.output), voxel_size_mm=args.voxel_size_mm, n_subjects=args.n_subjects
        )
    print(f"wrote {args.output}")
    return 0


def _build_cache(args: argparse.Namespace) -> int:
    from neuralizer.data.subjects import SynthConfig, SynthSliceSource

    source = SynthSliceSource(
        args.split, args.n_subjects, SynthConfig(voxel_size_mm=args.voxel_size_mm)
    )
    for index in range(len(source)):
        source.volumes(index)
    print(f"{args.split}: {len(source)} subjects cached in {source.root}")
    return 0


def _size(n_bytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n_bytes < 1000 or unit == "GB":
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1000
    raise AssertionError  # unreachable


def _count(entries: list) -> str:
    return f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}"


def _cache(args: argparse.Namespace) -> int:
    import time

    from neuralizer.data.cache import cache_entries, default_cache_dir, prune

    root = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    if args.clear or args.prune_unused is not None:
        removed = prune(root, unused_days=None if args.clear else args.prune_unused,
                        dry_run=args.dry_run)  # fmt: skip
        verb = "would remove" if args.dry_run else "removed"
        for entry in removed:
            print(f"{verb} {entry.path.name} ({_size(entry.size)})")
        print(f"{verb} {_count(removed)}, {_size(sum(e.size for e in removed))}")
        return 0
    entries = cache_entries(root)
    now = time.time()
    print(f"{root}:")
    for entry in entries:
        days = (now - entry.last_used) / 86400
        note = "  (left by an interrupted process)" if entry.leftover else ""
        print(
            f"  {entry.path.name:30s} {_size(entry.size):>9s}  last used {days:5.1f} days ago{note}"
        )
    print(f"{_count(entries)}, {_size(sum(e.size for e in entries))}")
    return 0


def add_data_commands(subparsers: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """Add ``data import``, ``data gallery``, ``data build-cache`` and ``data cache`` to the
    ``neuralizer`` CLI; return the ``data`` group's sub-parsers, for other packages to extend."""
    data = subparsers.add_parser("data", help="data sources, synthesis and import of your scans")
    commands = data.add_subparsers(dest="data_command", required=True)

    imp = commands.add_parser("import", help="bring a folder of NIfTI scans into the common space")
    imp.add_argument("src", help="folder of NAME.nii.gz (+ NAME_labels / NAME_mask beside them)")
    imp.add_argument("-o", "--output", required=True, help="dataset folder to write")
    imp.add_argument(
        "--kind",
        choices=("auto", "head", "brain"),
        default="auto",
        help="heads with skull or skull-stripped brains (default: guess per scan)",
    )
    imp.add_argument("--voxel-size-mm", type=float, default=1.0)
    imp.set_defaults(func=_import)

    people = commands.add_parser(
        "import-label-maps",
        help="align SynthSeg's 20 real label maps to the common space (the embedded derivative)",
    )
    people.add_argument("src", help="folder of training_seg_01.nii.gz ... training_seg_20.nii.gz")
    people.add_argument(
        "-o", "--output", help="folder to write (default: the package's own people/ folder)"
    )
    people.add_argument("--people", type=int, nargs="+", help="only these people (1-20)")
    people.add_argument(
        "--check",
        action="store_true",
        help="compare with the files in the output folder, do not write (exit 1 below 99.9 %%)",
    )
    people.set_defaults(func=_import_label_maps)

    gallery = commands.add_parser("gallery", help="picture of every source and synthetic subjects")
    gallery.add_argument("-o", "--output", required=True, help="PNG file to write")
    gallery.add_argument("--voxel-size-mm", type=float, default=2.0)
    gallery.add_argument("--n-subjects", type=int, default=5)
    gallery.add_argument(
        "--people", action="store_true", help="picture the real people instead (1 mm renders)"
    )
    gallery.set_defaults(func=_gallery)

    cache = commands.add_parser("build-cache", help="synthesise and cache a split's subjects")
    cache.add_argument("--split", choices=("train", "val", "test"), default="train")
    cache.add_argument("--n-subjects", type=int, default=64)
    cache.add_argument("--voxel-size-mm", type=float, default=2.0)
    cache.set_defaults(func=_build_cache)

    manage = commands.add_parser(
        "cache", help="list the data cache's entries with their size and last use; prune them"
    )
    manage.add_argument("--cache-dir", help="default: $NEURALIZER_CACHE or ~/.cache/neuralizer")
    what = manage.add_mutually_exclusive_group()
    what.add_argument(
        "--prune-unused",
        type=float,
        metavar="DAYS",
        help="remove entries no run has read for DAYS days (they are rebuilt when needed)",
    )
    what.add_argument(
        "--clear", action="store_true", help="remove every entry (while nothing is running)"
    )
    manage.add_argument("--dry-run", action="store_true", help="only say what would go")
    manage.set_defaults(func=_cache)
    return commands
