"""What a checkpoint says about its model, typed and checked (torch-free).

A checkpoint's safetensors metadata holds, each as a JSON string: ``format``, ``model_config``
(:class:`ModelConfig`), ``geometry`` (:class:`Geometry`: the grid and intensities the model was
trained on, which inference must reproduce), ``train_config`` (the training run's config, or
null) and ``provenance`` (data sources, code version, step, metrics).

Files written before ``geometry`` existed still load: their geometry is inferred as it always
was, from ``provenance`` (``voxel_size_mm``, ``image_size``, ``axis``) and the defaults below.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from neuralizer.model.config import ModelConfig

FORMAT = "neuralizer-checkpoint/1"
AXES = ("sagittal", "coronal", "axial")
#: What inference assumes of a file that records no geometry (the shipped model's training).
DEFAULT_VOXEL_SIZE_MM = 2.0
DEFAULT_IMAGE_SIZE = (96, 96)
DEFAULT_PERCENTILES = (0.5, 99.5)
#: The shipped model's weights file (``neuralizer.load()`` with no path).
DEFAULT_WEIGHTS = (
    Path(__file__).resolve().parent.parent / "weights" / "neuralizer-default.safetensors"
)
# An image side beyond this is a corrupt file or a typo (the paper's model: 192).
_MAX_SIDE = 8192
#: Voxel sizes a model may have been trained at: what ``neuralizer data import`` accepts. A
#: smaller one would make inference build an enormous working grid.
MIN_VOXEL_MM, MAX_VOXEL_MM = 0.25, 32.0
# JSON nested deeper than this, or longer than this, is not metadata we wrote (Python's json
# module would recurse ~1000 levels deep and fail with a RecursionError).
_MAX_DEPTH = 32
_MAX_CHARS = 4 * 2**20


def _checked_geometry(values: dict[str, Any], source: str) -> dict[str, Any]:
    """``values`` (image_size, voxel_size_mm, axis, percentiles) checked and normalised;
    ValueError naming the field as ``source.NAME`` ("geometry.voxel_size_mm")."""
    image_size, voxel = values["image_size"], values["voxel_size_mm"]
    size = tuple(image_size) if isinstance(image_size, list | tuple) else ()
    if len(size) != 2 or not all(_is_int(s) and 1 <= s <= _MAX_SIDE for s in size):
        raise ValueError(
            f"{source}.image_size must be two whole numbers in [1, {_MAX_SIDE}] (H, W), got "
            f"{image_size!r}"
        )
    if not _is_number(voxel) or not MIN_VOXEL_MM <= voxel <= MAX_VOXEL_MM:
        raise ValueError(
            f"{source}.voxel_size_mm must be a number of mm in [{MIN_VOXEL_MM:g}, "
            f"{MAX_VOXEL_MM:g}], got {voxel!r}"
        )
    if values["axis"] not in AXES:
        raise ValueError(f"{source}.axis must be one of {AXES}, got {values['axis']!r}")
    percentiles = values["percentiles"]
    low_high = tuple(percentiles) if isinstance(percentiles, list | tuple) else ()
    if (
        len(low_high) != 2
        or not all(_is_number(p) for p in low_high)
        or not (0 <= low_high[0] < low_high[1] <= 100)
    ):
        raise ValueError(
            f"{source}.percentiles must be two numbers 0 ≤ low < high ≤ 100, got {percentiles!r}"
        )
    return {
        "image_size": tuple(int(s) for s in size),
        "voxel_size_mm": float(voxel),
        "axis": values["axis"],
        "percentiles": tuple(float(p) for p in low_high),
    }


@dataclass(frozen=True)
class Geometry:
    """The slices a model was trained on: ``image_size`` H×W voxels of ``voxel_size_mm`` along
    ``axis``, intensities percentile-rescaled to [0, 1] (``percentiles`` low, high)."""

    image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE
    voxel_size_mm: float = DEFAULT_VOXEL_SIZE_MM
    axis: str = "coronal"
    percentiles: tuple[float, float] = DEFAULT_PERCENTILES

    def __post_init__(self) -> None:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, value in _checked_geometry(values, "geometry").items():
            object.__setattr__(self, name, value)

    def to_dict(self) -> dict[str, Any]:
        return {
            "image_size": list(self.image_size),
            "voxel_size_mm": self.voxel_size_mm,
            "axis": self.axis,
            "percentiles": list(self.percentiles),
        }

    @classmethod
    def from_dict(cls, values: Any) -> Geometry:
        """A checked geometry; ValueError for anything but an object of known fields."""
        if not isinstance(values, dict):
            raise ValueError(f"geometry must be a JSON object, got {type(values).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown geometry field(s) {unknown}; known: {sorted(known)}")
        return cls(**values)

    @classmethod
    def inferred(cls, provenance: dict[str, Any] | None) -> Geometry:
        """The geometry of a file that records none: from its provenance, else the defaults.
        A bad value is named as the provenance's field (``provenance.voxel_size_mm``)."""
        provenance = provenance or {}
        values = {
            "image_size": provenance.get("image_size", DEFAULT_IMAGE_SIZE),
            "voxel_size_mm": provenance.get("voxel_size_mm", DEFAULT_VOXEL_SIZE_MM),
            "axis": provenance.get("axis", "coronal"),
            "percentiles": DEFAULT_PERCENTILES,
        }
        return cls(**_checked_geometry(values, "provenance"))


@dataclass(frozen=True)
class CheckpointMetadata:
    """The typed metadata of a checkpoint (see the module's docstring)."""

    model: ModelConfig
    geometry: Geometry
    train_config: dict[str, Any] | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    #: False when the file recorded no geometry and :attr:`geometry` was inferred.
    geometry_recorded: bool = True

    def to_strings(self) -> dict[str, str]:
        """The safetensors metadata (each value a JSON string)."""
        return {
            "format": FORMAT,
            "model_config": json.dumps(self.model.to_dict()),
            "geometry": json.dumps(self.geometry.to_dict() if self.geometry_recorded else None),
            "train_config": json.dumps(self.train_config),
            "provenance": json.dumps(self.provenance),
        }

    @classmethod
    def from_strings(cls, raw: dict[str, str], where: str) -> CheckpointMetadata:
        """Decode and check a file's metadata; ValueError naming ``where`` and the field."""
        if raw.get("format") != FORMAT:
            raise ValueError(f"{where} is a safetensors file but not a {FORMAT} checkpoint")
        decoded = {}
        for key in ("model_config", "train_config", "provenance", "geometry"):
            if key not in raw and key != "geometry":
                raise ValueError(f"{where}: the metadata field {key} is missing")
            decoded[key] = _decode(raw.get(key, "null"), f"{where}: the metadata field {key}")
        if not isinstance(decoded["model_config"], dict):
            raise ValueError(f"{where}: the metadata field model_config must be a JSON object")
        for key in ("train_config", "provenance"):
            if decoded[key] is not None and not isinstance(decoded[key], dict):
                raise ValueError(
                    f"{where}: the metadata field {key} must be a JSON object or null, got "
                    f"{_json_type(decoded[key])}"
                )
        provenance = decoded["provenance"] or {}
        try:
            model = ModelConfig.from_dict(decoded["model_config"])
        except (TypeError, ValueError) as error:
            raise ValueError(f"{where}: the metadata field model_config: {error}") from None
        recorded = decoded["geometry"] is not None
        try:
            geometry = (
                Geometry.from_dict(decoded["geometry"]) if recorded
                else Geometry.inferred(provenance)
            )  # fmt: skip
        except (TypeError, ValueError) as error:
            raise ValueError(f"{where}: {error}") from None
        return cls(model, geometry, decoded["train_config"], provenance, recorded)


def read_metadata(path: str | Path) -> CheckpointMetadata:
    """The checked metadata of a checkpoint from its header alone (no tensor is read, no torch
    imported): what a prediction plans with before the model is loaded."""
    path = Path(path)
    try:
        with open(path, "rb") as file:
            length = int.from_bytes(file.read(8), "little")
            if not 0 < length <= _MAX_CHARS * 8:
                raise ValueError(f"a header of {length} bytes")
            header = json.loads(file.read(length))
        raw = header.get("__metadata__") or {}
        if not isinstance(raw, dict):
            raise ValueError("metadata that is not an object")
    except FileNotFoundError:
        raise FileNotFoundError(f"checkpoint not found: {path}") from None
    except (OSError, ValueError, RecursionError, AttributeError) as error:
        raise ValueError(f"{path} is not a safetensors checkpoint ({error})") from None
    return CheckpointMetadata.from_strings(raw, str(path))


def _decode(text: Any, what: str) -> Any:
    """One metadata value's JSON, no deeper than :data:`_MAX_DEPTH`; ValueError naming
    ``what`` (the file and the field) otherwise."""
    if not isinstance(text, str) or len(text) > _MAX_CHARS:
        raise ValueError(f"{what} is not JSON text of at most {_MAX_CHARS} characters")
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError(f"{what} is nested more than {_MAX_DEPTH} levels deep") from None
    except ValueError as error:  # json.JSONDecodeError
        raise ValueError(f"{what} is not valid JSON ({error})") from None
    level, frontier = 0, [value]
    while frontier:  # breadth-first, without recursion
        level += 1
        if level > _MAX_DEPTH:
            raise ValueError(f"{what} is nested more than {_MAX_DEPTH} levels deep")
        frontier = [
            child
            for item in frontier
            if isinstance(item, dict | list)
            for child in (item.values() if isinstance(item, dict) else item)
        ]
    return value


def _json_type(value: Any) -> str:
    names = {list: "an array", str: "text", bool: "true/false", type(None): "null"}
    return names.get(type(value), "a number")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def code_version() -> str:
    """The version of this code (``neuralizer.__version__``), for records of what made a file."""
    from neuralizer import __version__

    return __version__
