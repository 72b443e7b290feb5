"""The raw results file: one CSV row per (method, task instance, context size, target).

Rows are appended and flushed to disk as each group finishes, so an interrupted run loses at most
the group in progress. On reading, a torn last line (a crash mid-write) is dropped and the file
rewritten atomically; the keys of the complete rows tell a rerun what to skip.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from neuralizer.model.checkpoint import write_atomically

COLUMNS = (
    "experiment", "method", "task", "instance", "protocol", "label", "modality",
    "n_context", "target", "metric", "value", "seconds",
)  # fmt: skip
KEY = ("experiment", "method", "task", "instance", "n_context", "target")


def row_key(row: dict) -> tuple[str, ...]:
    return tuple(str(row[k]) for k in KEY)


def read_rows(path: str | Path) -> list[dict[str, str]]:
    """Complete rows of a results CSV (none if it does not exist); repairs a torn last line."""
    path = Path(path)
    if not path.is_file():
        return []
    text = path.read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    good = [r for r in rows if None not in r and all(r.get(c) not in (None, "") for c in KEY)]
    if len(good) != len(rows) or (text and not text.endswith("\n")):
        write_rows(path, good)
    return good


def write_rows(path: str | Path, rows: list[dict]) -> None:
    """Write a whole results CSV atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomically(path, buffer.getvalue().encode())


def append_rows(path: str | Path, rows: list[dict]) -> None:
    """Append rows (creating the file with its header) and force them to disk."""
    path = Path(path)
    if not path.is_file():
        write_rows(path, [])
    buffer = io.StringIO()
    csv.DictWriter(buffer, COLUMNS, lineterminator="\n").writerows(rows)
    with path.open("a") as file:
        file.write(buffer.getvalue())
        file.flush()
        os.fsync(file.fileno())
