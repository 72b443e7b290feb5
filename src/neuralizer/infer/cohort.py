"""What a cohort run (a folder of targets, a BIDS dataset, or one target) gathers as it goes,
for ``--statistics FILE.tsv`` and ``--report FILE.html``.

Each finished target is summarised at once (its structure volumes, and small PNG pictures when
a report is asked), so a cohort of hundreds holds no volumes in memory; a target whose results
exist already (a resumed folder run) is summarised from its files. The QC flags are judged across
the cohort when the run ends (:func:`neuralizer.infer.statistics.flag_cohort`), then both files
are written atomically.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from neuralizer.infer.report import ReportRow, mosaic_pictures, write_report
from neuralizer.infer.statistics import (
    StructureVolume,
    flag_cohort,
    structure_volumes,
    write_statistics,
)


@dataclass
class Cohort:
    """Collects per-target summaries; :meth:`finish` writes ``statistics`` and ``report``.

    ``names``: label value -> structure name (label maps); ``structure``: the name of a binary
    mask's structure (a preset's name, a BIDS ``desc``); ``title``: the report's heading.
    """

    statistics: Path | None = None
    report: Path | None = None
    names: Mapping[int, str] = field(default_factory=dict)
    structure: str = "mask"
    title: str = "neuralizer QC report"
    notes: list[str] = field(default_factory=list)
    rows: list[ReportRow] = field(default_factory=list)

    @property
    def wanted(self) -> bool:
        return self.statistics is not None or self.report is not None

    def _names(self, labels: Sequence[int]) -> dict[int, str]:
        if list(labels) == [1] and 1 not in self.names:
            return {1: self.structure}
        return dict(self.names)

    def add(self, name: str, target_data: np.ndarray, affine: np.ndarray | None, result,
            outputs: Sequence[str] = ()) -> None:  # fmt: skip
        """Summarise one finished target: ``target_data`` C×(spatial), ``affine`` None for 2D,
        ``result`` a :class:`~neuralizer.infer.engine.PredictResult`."""
        prediction = _array(result.prediction)
        uncertainty = None if result.uncertainty is None else _array(result.uncertainty)
        self._add(name, result.task, target_data[0], affine, prediction, uncertainty,
                  tuple(result.label_values), outputs)  # fmt: skip

    def add_files(self, name: str, target, prediction: Path, uncertainty: Path | None,
                  plan, outputs: Sequence[str] = ()) -> None:  # fmt: skip
        """Summarise a target whose results exist already: ``target`` a Loaded input, the
        prediction (and uncertainty) read back from their files, ``plan`` the context's
        :class:`~neuralizer.infer.outputs.OutputPlan`."""
        from neuralizer.infer.io import read_input

        result = read_input(prediction)
        data = result.data[0]
        spread = None
        if uncertainty is not None and uncertainty.is_file():
            spread = read_input(uncertainty).data[0]
        affine = None if result.image is None else result.image.affine
        self._add(name, plan.kind, target.data[0], affine, data, spread, plan.label_values,
                  outputs)  # fmt: skip

    def _add(self, name, task, image, affine, prediction, uncertainty, labels, outputs) -> None:
        volumes: tuple[StructureVolume, ...] = ()
        if task != "image" and affine is not None:
            labels = list(labels) if task == "labels" else [1]
            volumes = tuple(structure_volumes(name, prediction, affine, labels,
                                              self._names(labels), uncertainty))  # fmt: skip
        mosaic = spread = None
        if self.report is not None:
            mosaic, spread = mosaic_pictures(image, affine, prediction, task, uncertainty)
        self.rows.append(ReportRow(name, task, mosaic, spread, volumes, None, tuple(outputs)))

    def describe(self, context, options, examples: str | None = None) -> None:
        """Say in the report how the results were made: the examples (``examples``, default
        their count), the ensemble, the alignment and the slice direction."""
        examples = examples or f"{len(context.context_in)} example pairs"
        self.notes.append(
            f"{examples}; {context.outputs.kind}; ensemble {options.ensemble}; alignment "
            f"{options.align}; {options.axis} slices; seed {options.seed}"
        )

    def fail(self, name: str, reason: str) -> None:
        self.rows.append(ReportRow(name, error=reason))

    def flagged_rows(self) -> list[ReportRow]:
        """The rows with the QC flags judged across the cohort."""
        flat = [v for row in self.rows for v in row.volumes]
        flagged = iter(flag_cohort(flat))
        return [
            replace(row, volumes=tuple(next(flagged) for _ in row.volumes)) for row in self.rows
        ]

    def finish(self, *, quiet: bool = False) -> list[ReportRow]:
        """Write the statistics table and the report (those asked for) and say so (unless
        ``quiet``); the flagged rows."""
        rows = self.flagged_rows()
        if self.statistics is not None:
            write_statistics(self.statistics, [v for row in rows for v in row.volumes])
        if self.report is not None:
            write_report(self.report, rows, self.title, self.notes)
        if quiet:
            return rows
        for path in (self.statistics, self.report):
            if path is not None:
                print(f"wrote {path}")
        flagged = [row.target for row in rows if row.flags]
        if flagged:
            print(f"QC: {len(flagged)} of {len(rows)} targets flagged: {', '.join(flagged)}",
                  file=sys.stderr)  # fmt: skip
        return rows


def _array(value) -> np.ndarray:
    return np.asarray(value.dataobj) if hasattr(value, "dataobj") else np.asarray(value)


def check_cohort_files(statistics: str | Path | None, report: str | Path | None,
                       label_names: str | Path | None = None) -> None:  # fmt: skip
    """ValueError before any work for a table that is not ``.tsv``, a report not ``.html``, a
    file that cannot be written, or an unreadable label-name table."""
    from neuralizer.infer.paths import check_outputs
    from neuralizer.infer.statistics import read_label_names

    if statistics is not None and not str(statistics).lower().endswith(".tsv"):
        raise ValueError(
            f"--statistics writes a tab-separated table: {statistics} should end in .tsv"
        )
    if report is not None and not str(report).lower().endswith((".html", ".htm")):
        raise ValueError(f"--report writes one HTML page: {report} should end in .html")
    outputs = {"--statistics": statistics, "--report": report}
    check_outputs({k: None if v is None else Path(v) for k, v in outputs.items()},
                  [] if label_names is None else [Path(label_names)])  # fmt: skip
    if label_names is not None:
        read_label_names(label_names)
