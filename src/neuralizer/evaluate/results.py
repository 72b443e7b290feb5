"""The raw results file: one CSV row per (method, task instance, context size, target).

Rows are appended and flushed to disk as each group finishes, so an interrupted run loses at most
the group in progress. On reading, a torn last line (a crash mid-write) is dropped and the file
rewritten atomically; the keys of the complete rows tell a rerun what to skip (a duplicated key
keeps its first row). A run holds ``<output>.lock`` (:func:`exclusive`) so that two runs never
append to one file; runs split over processes write files of their own, which
:func:`merge_results` (``python -m neuralizer.evaluate.results``) then joins.
"""

from __future__ import annotations

import argparse
import csv
import fcntl
import io
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from neuralizer.files import write_atomically

COLUMNS = (
    "experiment", "method", "task", "instance", "protocol", "label", "modality",
    "n_context", "target", "metric", "value", "seconds",
)  # fmt: skip
KEY = ("experiment", "method", "task", "instance", "n_context", "target")


def row_key(row: dict) -> tuple[str, ...]:
    return tuple(str(row[k]) for k in KEY)


def read_rows(path: str | Path, *, repair: bool = True) -> list[dict[str, str]]:
    """Complete rows of a results CSV (none if it does not exist); ``repair``: rewrite the file
    without a torn last line or duplicates (only the run that holds the file's lock may)."""
    path = Path(path)
    if not path.is_file():
        return []
    text = path.read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    torn = bool(text) and not text.endswith("\n")
    complete = rows[:-1] if torn else rows
    unique: dict[tuple[str, ...], dict[str, str]] = {}
    for r in complete:
        if (
            None not in r
            and all(r.get(c) is not None for c in COLUMNS)
            and all(r[c] != "" for c in (*KEY, "value"))
        ):
            unique.setdefault(row_key(r), r)  # a duplicate (two runs at once) keeps the first
    good = list(unique.values())
    if repair and (torn or len(good) != len(rows)):
        write_rows(path, good)
    return good


def _distinct(rows: list[dict]) -> None:
    """Refuse rows that share a :data:`KEY`: reread, all but the first would be dropped."""
    seen: set[tuple[str, ...]] = set()
    for row in rows:
        key = row_key(row)
        if key in seen:
            raise ValueError(
                f"two result rows share the key {dict(zip(KEY, key, strict=True))}: give each "
                "its own instance (one per structure, for example)"
            )
        seen.add(key)


def write_rows(path: str | Path, rows: list[dict]) -> None:
    """Write a whole results CSV atomically (rows with distinct keys)."""
    _distinct(rows)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomically(path, buffer.getvalue().encode())


@contextmanager
def exclusive(path: str | Path) -> Iterator[None]:
    """Hold ``<path>.lock`` for the duration: a second run on the same results file is refused."""
    lock = Path(f"{path}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(
                f"another evaluation is writing {path}; wait for it (or stop it) and rerun"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def append_rows(path: str | Path, rows: list[dict]) -> None:
    """Append rows (distinct keys; creating the file with its header), forced to disk."""
    _distinct(rows)
    path = Path(path)
    if not path.is_file():
        write_rows(path, [])
    buffer = io.StringIO()
    csv.DictWriter(buffer, COLUMNS, lineterminator="\n").writerows(rows)
    with path.open("a") as file:
        file.write(buffer.getvalue())
        file.flush()
        os.fsync(file.fileno())


def merge_results(into: str | Path, sources: Sequence[str | Path]) -> int:
    """Add to the results CSV ``into`` every row of ``sources`` whose key it lacks (the first
    file to hold a key wins), and to each JSON summaries file beside it (``<stem>-<kind>.json``:
    U-Net trainings, adaptations) the entries of the sources' files of that kind that it lacks.
    Holds ``into``'s lock. Returns the number of rows added."""
    into = Path(into)
    with exclusive(into):
        rows = read_rows(into)
        before, known = len(rows), {row_key(r) for r in rows}
        for source in map(Path, sources):
            for row in read_rows(source, repair=False):
                if row_key(row) not in known:
                    known.add(row_key(row))
                    rows.append(row)
            for summaries in sorted(source.parent.glob(f"{source.stem}-*.json")):
                kind = summaries.name[len(source.stem) :]
                target = into.with_name(into.stem + kind)
                merged = json.loads(target.read_text()) if target.is_file() else {}
                for name, entry in json.loads(summaries.read_text()).items():
                    merged.setdefault(name, entry)
                text = json.dumps(dict(sorted(merged.items())), indent=1) + "\n"
                write_atomically(target, text.encode())
        write_rows(into, rows)
    return len(rows) - before


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m neuralizer.evaluate.results",
        description="merge results CSVs (and their JSON summaries) written by separate runs",
    )
    parser.add_argument("sources", nargs="+", help="results CSVs to take rows from")
    parser.add_argument("--into", required=True, help="the results CSV that receives them")
    args = parser.parse_args(argv)
    added = merge_results(args.into, args.sources)
    print(f"{args.into}: {added} rows added")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
