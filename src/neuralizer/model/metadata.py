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
from typing import Any

from neuralizer.model.config import ModelConfig

FORMAT = "neuralizer-checkpoint/1"
AXES = ("sagittal", "coronal", "axial")
#: What inference assumes of a file that records no geometry (the shipped model's training).
DEFAULT_VOXEL_SIZE_MM = 2.0
DEFAULT_IMAGE_SIZE = (96, 96)
DEFAULT_PERCENTILES = (0.5, 99.5)
# An image side beyond this is a corrupt file or a typo (the paper's model: 192).
_MAX_SIDE = 8192


@dataclass(frozen=True)
class Geometry:
    """The slices a model was trained on: ``image_size`` H×W voxels of ``voxel_size_mm`` along
    ``axis``, intensities percentile-rescaled to [0, 1] (``percentiles`` low, high)."""

    image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE
    voxel_size_mm: float = DEFAULT_VOXEL_SIZE_MM
    axis: str = "coronal"
    percentiles: tuple[float, float] = DEFAULT_PERCENTILES

    def __post_init__(self) -> None:
        size = tuple(self.image_size) if isinstance(self.image_size, list | tuple) else ()
        if len(size) != 2 or not all(_is_int(s) and 1 <= s <= _MAX_SIDE for s in size):
            raise ValueError(
                f"geometry image_size must be two whole numbers in [1, {_MAX_SIDE}] (H, W), got "
                f"{self.image_size!r}"
            )
        if not _is_number(self.voxel_size_mm) or not 0 < self.voxel_size_mm < 100:
            raise ValueError(
                f"geometry voxel_size_mm must be a number of mm in (0, 100), got "
                f"{self.voxel_size_mm!r}"
            )
        if self.axis not in AXES:
            raise ValueError(f"geometry axis must be one of {AXES}, got {self.axis!r}")
        low_high = tuple(self.percentiles) if isinstance(self.percentiles, list | tuple) else ()
        if (
            len(low_high) != 2
            or not all(_is_number(p) for p in low_high)
            or not (0 <= low_high[0] < low_high[1] <= 100)
        ):
            raise ValueError(
                f"geometry percentiles must be two numbers 0 ≤ low < high ≤ 100, got "
                f"{self.percentiles!r}"
            )
        object.__setattr__(self, "image_size", tuple(int(s) for s in size))
        object.__setattr__(self, "voxel_size_mm", float(self.voxel_size_mm))
        object.__setattr__(self, "percentiles", tuple(float(p) for p in low_high))

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
        """The geometry of a file that records none: from its provenance, else the defaults."""
        provenance = provenance or {}
        return cls(
            image_size=tuple(provenance.get("image_size", DEFAULT_IMAGE_SIZE)),
            voxel_size_mm=provenance.get("voxel_size_mm", DEFAULT_VOXEL_SIZE_MM),
            axis=provenance.get("axis", "coronal"),
        )


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
        """Decode and check a file's metadata; ValueError (naming ``where``) if it is not ours."""
        if raw.get("format") != FORMAT:
            raise ValueError(f"{where} is a safetensors file but not a {FORMAT} checkpoint")
        try:
            decoded = {
                key: json.loads(raw[key]) for key in ("model_config", "train_config", "provenance")
            }
            geometry = json.loads(raw.get("geometry", "null"))
        except (KeyError, TypeError, json.JSONDecodeError) as error:
            raise ValueError(f"{where} has missing or malformed metadata: {error}") from None
        if not isinstance(decoded["model_config"], dict):
            raise ValueError(f"{where}: model_config must be a JSON object")
        for key in ("train_config", "provenance"):
            if decoded[key] is not None and not isinstance(decoded[key], dict):
                raise ValueError(f"{where}: {key} must be a JSON object or null")
        provenance = decoded["provenance"] or {}
        try:
            model = ModelConfig.from_dict(decoded["model_config"])
            recorded = geometry is not None
            geometry = Geometry.from_dict(geometry) if recorded else Geometry.inferred(provenance)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{where}: {error}") from None
        return cls(model, geometry, decoded["train_config"], provenance, recorded)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
