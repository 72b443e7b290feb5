"""``neuralizer predict --bids BIDS_DIR -o DERIV_DIR``: a BIDS dataset in, a BIDS derivatives
dataset out.

The dataset is indexed with pybids (the field's library, which BIDS apps such as fMRIPrep use).
Targets are the NIfTI files that match ``--target-filter`` (default ``datatype=anat
suffix=T1w``) and ``--participant-label``. Examples are files (``--context-in``/``--context-out``,
a preset) or a derivatives folder of hand labels (``--examples-from``): each label file there is
paired with its subject's (and session's) image that matches the target filter. A target that is
an example input is not predicted.

Every output keeps its source's entities and adds ``desc-<name>``, beside its source's path:
``sub-X/[ses-Y/]anat/sub-X_[ses-Y_]..._desc-<name>_mask.nii.gz`` (a binary task),
``..._dseg.nii.gz`` with one ``desc-<name>_dseg.tsv`` of label names at the top (label maps),
``..._probseg.nii.gz`` (the probabilities), an image result as ``..._desc-<name>_<suffix>.nii.gz``
and, when an ensemble ran, its s.d. as ``..._desc-<name>Uncertainty_<suffix>.nii.gz`` (BIDS has
no suffix for an uncertainty map: it is kept as an image derived from the source). A JSON sidecar
beside each names the source, the context files, the alignment, the ensemble, the model and the
seed; ``dataset_description.json`` names the software, its version, the model and the seed.

Nothing is written inside BIDS_DIR but ``BIDS_DIR/derivatives/<name>/`` (the conventional place;
pybids keeps its index in memory). Rerunning skips targets whose result and sidecar exist.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from neuralizer.errors import USER_ERRORS
from neuralizer.files import write_atomically
from neuralizer.infer.paths import Spec, input_files

#: BIDS entity keys (as in file names) -> pybids' names; pybids' own names are accepted as well.
ENTITY_KEYS = {
    "sub": "subject", "ses": "session", "acq": "acquisition", "ce": "ceagent",
    "rec": "reconstruction", "dir": "direction", "mod": "modality", "inv": "inversion",
    "mt": "mtransfer", "task": "task", "run": "run", "echo": "echo", "flip": "flip",
    "part": "part", "space": "space", "desc": "desc",
}  # fmt: skip
DEFAULT_TARGET_FILTER = {"datatype": "anat", "suffix": "T1w"}
DEFAULT_EXAMPLE_FILTER = {"suffix": ["mask", "dseg"]}
NIFTI_EXTENSIONS = [".nii", ".nii.gz"]
#: The BIDS version whose derivatives rules the names follow.
BIDS_VERSION = "1.10.0"
_LABEL = re.compile(r"^[a-zA-Z0-9]+$")


def parse_filters(tokens: Sequence[str], what: str) -> dict[str, str | list[str]]:
    """``["suffix=T1w", "ses=01,02"]`` -> ``{"suffix": "T1w", "session": ["01", "02"]}``."""
    filters: dict[str, str | list[str]] = {}
    for token in tokens:
        key, sep, value = token.partition("=")
        if not sep or not key or not value:
            raise ValueError(
                f"{what} takes key=value pairs (e.g. suffix=T1w ses=01), got {token!r}"
            )
        values = [v for v in value.split(",") if v]
        filters[ENTITY_KEYS.get(key, key)] = values if len(values) > 1 else values[0]
    return filters


def participant_labels(tokens: Sequence[str] | None) -> list[str] | None:
    """Labels of ``--participant-label`` without a ``sub-`` prefix, checked."""
    if not tokens:
        return None
    labels = [t.removeprefix("sub-") for t in tokens]
    for label in labels:
        if not _LABEL.match(label):
            raise ValueError(f"--participant-label {label!r}: a BIDS label is letters and digits")
    return labels


def check_desc(name: str) -> str:
    if not _LABEL.match(name):
        raise ValueError(f"--desc {name!r}: a BIDS desc label is letters and digits only")
    return name


def check_output_folder(bids_dir: Path, out_dir: Path, *others: Path | None) -> None:
    """ValueError unless ``out_dir`` is outside ``bids_dir`` or ``bids_dir/derivatives/<name>``,
    and no other output (``others``: the table, the report) lands elsewhere inside ``bids_dir``."""
    root = bids_dir.resolve()
    if not (root / "dataset_description.json").is_file():
        raise ValueError(f"{bids_dir} is not a BIDS dataset: it has no dataset_description.json")
    out = out_dir.resolve()
    if out == root or (root in out.parents and out.parent != root / "derivatives"):
        raise ValueError(
            f"{out_dir} lies inside the BIDS dataset {bids_dir}; write the derivatives outside it "
            f"or to {bids_dir}/derivatives/neuralizer"
        )
    for path in others:
        if (
            path is not None
            and root in path.resolve().parents
            and out not in path.resolve().parents
        ):
            raise ValueError(f"{path} would be written inside the BIDS dataset {bids_dir}")
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out_dir} is a file; the derivatives dataset is a folder")
    description = out / "dataset_description.json"
    if description.is_file():
        try:
            made_by = json.loads(description.read_text())["GeneratedBy"][0]["Name"]
        except (ValueError, KeyError, IndexError, TypeError):
            made_by = None
        if made_by != "neuralizer":
            raise ValueError(f"{out_dir} holds another dataset; give an empty or new folder")


@dataclass(frozen=True)
class BidsTarget:
    """One target: its file, the folder (relative to the dataset) and name parts of its
    outputs: ``stem`` (its entities, without ``desc``) and ``suffix``."""

    path: Path
    folder: Path
    stem: str
    suffix: str

    def output(self, desc: str, suffix: str | None = None) -> Path:
        """The relative path of an output with ``desc`` and ``suffix`` (default: the source's)."""
        return self.folder / f"{self.stem}_desc-{desc}_{suffix or self.suffix}.nii.gz"


def bids_target(path: Path, root: Path) -> BidsTarget:
    name = path.name.removesuffix(".gz").removesuffix(".nii")
    *entities, suffix = name.split("_")
    stem = "_".join(e for e in entities if not e.startswith("desc-"))
    return BidsTarget(path, path.parent.relative_to(root), stem, suffix)


def open_layout(bids_dir: Path, derivatives: Sequence[Path] = ()):
    """A pybids layout of ``bids_dir`` (and of ``derivatives``), indexed in memory."""
    try:
        from bids import BIDSLayout
    except ImportError:
        raise ValueError("--bids needs pybids: pip install 'neuralizer[bids]'") from None
    try:
        return BIDSLayout(str(bids_dir), derivatives=[str(d) for d in derivatives] or False)
    except Exception as error:  # pybids raises its own types for a malformed dataset
        raise ValueError(f"{bids_dir} cannot be read as BIDS ({error})") from None


def _get(layout, what: str, **filters) -> list[Path]:
    try:
        found = layout.get(return_type="filename", **filters)
    except ValueError as error:  # an entity pybids does not know
        raise ValueError(f"{what}: {str(error).split('.')[0]}") from None
    return sorted(Path(f) for f in found)


def find_targets(layout, filters: dict, participants: list[str] | None) -> list[BidsTarget]:
    """The targets (sorted) matching ``filters`` and ``participants``; FileNotFoundError if none."""
    query = {**DEFAULT_TARGET_FILTER, **filters, "extension": NIFTI_EXTENSIONS, "scope": "raw"}
    if participants:
        query["subject"] = participants
    paths = _get(layout, "--target-filter", **query)
    if not paths:
        shown = " ".join(f"{k}={v}" for k, v in query.items() if k not in ("extension", "scope"))
        raise FileNotFoundError(f"no file of {layout.root} matches {shown}")
    return [bids_target(p, Path(layout.root)) for p in paths]


def _example_input(layout, label, target_filter: dict) -> Path:
    """The image of the hand-labelled ``label`` (a pybids file): same subject and session,
    matching the target filter, narrowed by the label's other entities when several match."""
    entities = label.get_entities()
    query = {**DEFAULT_TARGET_FILTER, **target_filter, "subject": entities["subject"],
             "extension": NIFTI_EXTENSIONS, "scope": "raw"}  # fmt: skip
    if "session" in entities:
        query["session"] = entities["session"]
    found = _get(layout, "--target-filter", **query)
    for key in ("acquisition", "ceagent", "reconstruction", "run", "echo", "part"):
        if len(found) > 1 and key in entities:
            found = _get(layout, "--target-filter", **query, **{key: entities[key]})
    if len(found) != 1:
        raise ValueError(
            f"hand label {label.path}: {len(found)} images of its subject match the target filter "
            f"({', '.join(p.name for p in found) or 'none'}); narrow it with --target-filter"
        )
    return found[0]


@dataclass(frozen=True)
class Examples:
    """Example pairs found in a derivatives folder, their ``desc`` and label names."""

    inputs: list[Path]
    outputs: list[Path]
    desc: str | None = None
    names: dict[int, str] = field(default_factory=dict)


def examples_from(layout, folder: Path, filters: dict, target_filter: dict) -> Examples:
    """The hand-labelled pairs of the derivatives ``folder`` (indexed in ``layout``)."""
    from neuralizer.infer.statistics import read_label_names

    query = {**DEFAULT_EXAMPLE_FILTER, **filters, "extension": NIFTI_EXTENSIONS}
    labels = [
        f for f in layout.get(return_type="object", scope="derivatives", **query)
        if Path(f.path).resolve().is_relative_to(folder.resolve())
    ]  # fmt: skip
    if not labels:
        raise FileNotFoundError(f"{folder} holds no hand labels matching {query}")
    labels.sort(key=lambda f: f.path)
    inputs = [_example_input(layout, label, target_filter) for label in labels]
    descs = {label.get_entities().get("desc") for label in labels}
    names: dict[int, str] = {}
    for table in sorted(folder.glob("*dseg.tsv")) + [
        Path(labels[0].path.removesuffix(".gz").removesuffix(".nii") + ".tsv")
    ]:
        if table.is_file():
            names = read_label_names(table)
    desc = descs.pop() if len(descs) == 1 else None
    return Examples(inputs, [Path(f.path) for f in labels], desc, names)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_identity(model) -> dict[str, str]:
    """Which model ran: its file and SHA-256 (the shipped model when ``model`` is None)."""
    from neuralizer.model.metadata import DEFAULT_WEIGHTS

    if model is not None and not isinstance(model, str | Path):
        return {"Model": f"an in-memory {type(model).__name__}"}
    path = DEFAULT_WEIGHTS if model is None else Path(model)
    if not path.is_file():
        return {"Model": str(path)}
    name = "the shipped model" if model is None else str(path)
    return {"Model": f"{name} ({path.name})", "ModelSHA256": file_sha256(path)}


def json_bytes(value: dict) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


@dataclass(frozen=True)
class BidsJob:
    """A checked BIDS run: where, which targets, the examples' files and names, ``desc``."""

    bids_dir: Path
    out_dir: Path
    targets: list[BidsTarget]
    context_in: list[Spec]
    context_out: list[Spec]
    desc: str
    names: dict[int, str] = field(default_factory=dict)
    preset: str | None = None

    def context(self) -> list[dict[str, str]] | str:
        """The examples, as a sidecar names them."""
        if self.preset:
            return f"the built-in examples of preset {self.preset}"
        return [{"Input": self.uri(a), "Output": self.uri(b)}
                for a, b in zip(self.context_in, self.context_out, strict=True)]  # fmt: skip

    def with_names(self, names: dict[int, str]) -> BidsJob:
        from dataclasses import replace

        return replace(self, names=names)

    def uri(self, spec: Spec) -> str:
        """A BIDS URI of a file of the input dataset (``bids:raw:...``), else its path; files
        joined into channels are joined by `` + ``."""
        if isinstance(spec, tuple | list):
            return " + ".join(self.uri(p) for p in spec)
        path = spec
        resolved = Path(path).resolve()
        root = self.bids_dir.resolve()
        if resolved.is_relative_to(root):
            return f"bids:raw:{resolved.relative_to(root).as_posix()}"
        return str(path)


def write_description(job: BidsJob, options, identity: dict[str, str], kind: str) -> None:
    """``dataset_description.json`` (with ``GeneratedBy``, the model's ``identity`` and the
    seed), a ``.bidsignore`` for the cohort's table and report, and the label names of a label
    map."""
    from neuralizer.model.metadata import code_version

    source = json.loads((job.bids_dir / "dataset_description.json").read_text(encoding="utf-8"))
    description = {
        "Name": f"neuralizer {job.desc} of {source.get('Name', job.bids_dir.name)}",
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [{
            "Name": "neuralizer",
            "Version": code_version(),
            "Description": f"in-context prediction ({kind}, desc-{job.desc}) from "
            f"{len(job.context_in) or 'preset'} example pairs with {identity['Model']}, "
            f"seed {options.seed}",
        }],
        "SourceDatasets": [{"URL": "bids:raw:"}],
        "DatasetLinks": {"raw": os.path.relpath(job.bids_dir.resolve(), job.out_dir.resolve())},
        "Neuralizer": {**identity, "Seed": options.seed, "Ensemble": options.ensemble,
                       "Alignment": options.align, "Axis": options.axis},
    }  # fmt: skip
    write_atomically(job.out_dir / "dataset_description.json", json_bytes(description))
    write_atomically(job.out_dir / ".bidsignore", b"*_volumes.tsv\n*_report.html\n")
    if kind == "labels":
        from neuralizer.infer.statistics import label_table

        write_atomically(job.out_dir / f"desc-{job.desc}_dseg.tsv", label_table(job.names))


def sidecar(job: BidsJob, target: BidsTarget, options, identity: dict[str, str], result,
            what: str) -> dict:  # fmt: skip
    """The JSON sidecar of one output of ``target`` (``what`` says which)."""
    out = {
        "Description": what,
        "Sources": [job.uri(target.path)],
        "Context": job.context(),
        "Task": result.task,
        "Alignment": options.align,
        "Steps": list(result.steps),
        "Ensemble": options.ensemble,
        "Seed": options.seed,
        "Axis": options.axis,
        **identity,
    }
    if result.label_values:
        out["LabelValues"] = [int(v) for v in result.label_values]
    return out


def output_files(job: BidsJob, target: BidsTarget, kind: str, ensemble: int):
    """The :class:`~neuralizer.infer.run.OutputFiles` of ``target`` (absolute paths)."""
    from neuralizer.infer.run import OutputFiles

    main = {"segmentation": "mask", "labels": "dseg"}.get(kind)
    prediction = job.out_dir / target.output(job.desc, main)
    probabilities = job.out_dir / target.output(job.desc, "probseg") if main else None
    uncertainty = None
    if ensemble > 1:
        uncertainty = job.out_dir / target.output(f"{job.desc}Uncertainty")
    return OutputFiles(prediction, uncertainty, probabilities)


def _descriptions(kind: str, desc: str, ensemble: int) -> dict[str, str]:
    what = {"segmentation": f"binary mask of {desc}", "labels": f"label map ({desc})",
            "image": f"image result ({desc})"}[kind]  # fmt: skip
    return {  # the prediction's sidecar last: it marks a finished target
        "probabilities": f"probabilities behind the {what}",
        "uncertainty": f"s.d. across {ensemble} ensemble passes of the {what} (not an image of "
        "the source's contrast)",
        "prediction": f"{what}, predicted by neuralizer from the context pairs",
    }


def run_bids(job: BidsJob, context, options, model, cohort) -> int:
    """Predict every target of ``job`` into its derivatives dataset; 1 if any failed, else 0."""
    from tqdm.auto import tqdm

    from neuralizer.infer.engine import resolve_model
    from neuralizer.infer.io import read_input
    from neuralizer.infer.run import run_one

    kind = context.outputs.kind
    identity = model_identity(model)
    net = resolve_model(model, options.device)
    write_description(job, options, identity, kind)
    texts = _descriptions(kind, job.desc, options.ensemble)
    failed, skipped = [], 0
    for target in tqdm(job.targets, unit="scan", disable=not sys.stderr.isatty()):
        files = output_files(job, target, kind, options.ensemble)
        done = files.prediction.with_name(files.prediction.name.removesuffix(".nii.gz") + ".json")
        outputs = [str(files.prediction.relative_to(job.out_dir))]
        try:
            if files.prediction.is_file() and done.is_file():
                skipped += 1
                cohort.add_files(target.path.name, read_input(target.path), files.prediction,
                                 files.uncertainty, context.outputs, outputs)  # fmt: skip
                continue
            loaded, result = run_one(target.path, context, options, files, net)
            for key, text in texts.items():
                path = getattr(files, key)
                if path is not None and path.is_file():  # the sidecar of the prediction last
                    side = sidecar(job, target, options, identity, result, text)
                    name = path.name.removesuffix(".nii.gz") + ".json"
                    write_atomically(path.with_name(name), json_bytes(side))
            cohort.add(target.path.name, loaded.data, loaded.image.affine, result, outputs)
        except USER_ERRORS as error:
            failed.append((target.path.name, str(error)))
            cohort.fail(target.path.name, str(error))
    print(f"predicted {len(job.targets) - len(failed) - skipped} of {len(job.targets)} targets "
          f"into {job.out_dir}")  # fmt: skip
    if skipped:
        print(f"skipped {skipped} whose outputs exist already (delete them to predict again)")
    for name, reason in failed:
        print(f"failed: {name}: {reason}", file=sys.stderr)
    return 1 if failed else 0


def plan_bids(
    bids_dir: Path,
    out_dir: Path,
    *,
    target_filter: Sequence[str] = (),
    participants: Sequence[str] | None = None,
    examples_dir: Path | None = None,
    examples_filter: Sequence[str] = (),
    context_in: Sequence[Spec] = (),
    context_out: Sequence[Spec] = (),
    desc: str | None = None,
    preset: str | None = None,
) -> BidsJob:
    """Index the dataset, find the targets and the examples, name the outputs; no model."""
    filters = parse_filters(target_filter, "--target-filter")
    labels = participant_labels(participants)
    if examples_dir is not None:
        if context_in or context_out or preset:
            raise ValueError("give --examples-from or --context-in/--context-out (or --preset)")
        if not examples_dir.is_dir():
            raise FileNotFoundError(f"--examples-from {examples_dir}: no such folder")
        if examples_dir.resolve() == out_dir.resolve():
            raise ValueError("--examples-from must differ from the output folder")
    layout = open_layout(bids_dir, [examples_dir] if examples_dir is not None else [])
    targets = find_targets(layout, filters, labels)
    names: dict[int, str] = {}
    if examples_dir is not None:
        examples = examples_from(
            layout, examples_dir, parse_filters(examples_filter, "--examples-filter"), filters
        )
        context_in = [str(p) for p in examples.inputs]
        context_out = [str(p) for p in examples.outputs]
        desc, names = desc or examples.desc, examples.names
    example_files = [path.resolve() for spec in context_in for path in input_files(spec)]
    targets = [t for t in targets if t.path.resolve() not in example_files]
    if not targets:
        raise FileNotFoundError(f"every target of {bids_dir} is an example; nothing to predict")
    name = check_desc(desc or re.sub(r"[^a-zA-Z0-9]", "", preset or "") or "neuralizer")
    return BidsJob(bids_dir, out_dir, targets, list(context_in), list(context_out), name, names,
                   preset)  # fmt: skip
