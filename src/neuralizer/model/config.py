"""The architecture of a Neuralizer network as data (torch-free): saved with every checkpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

# Sanity bounds (the paper's model: 64, 4, 3, 1): a config beyond them is a corrupt file or a typo.
_CONFIG_LIMITS = {"channels": 4096, "stages": 12, "in_channels": 64, "out_channels": 64}


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a Neuralizer network; saved with every checkpoint."""

    channels: int = 64
    stages: int = 4
    in_channels: int = 3
    out_channels: int = 1

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"ModelConfig.{f.name} must be a positive integer, got {value!r}")
            if value > _CONFIG_LIMITS[f.name]:
                raise ValueError(
                    f"ModelConfig.{f.name}={value} is beyond any sensible network "
                    f"(at most {_CONFIG_LIMITS[f.name]})"
                )

    @property
    def size_multiple(self) -> int:
        """H and W must be multiples of this (one 2×2 pooling per stage transition)."""
        return 2 ** (self.stages - 1)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"unknown ModelConfig field(s) {unknown}; known fields: {sorted(known)}"
            )
        return cls(**values)
