"""Several slice sources as one, e.g. the MNI-based subjects and the real people.

Subject indices run through the parts in order. The episode sampler draws each episode from one
part (``SamplerConfig.source_weights``), so a target and its context are always the same kind of
subject, with the same label protocols.
"""

from __future__ import annotations

from collections.abc import Mapping

from neuralizer.data.subject import SliceSource, SliceSubject


class MixedSliceSource:
    """The parts ``{name: source}`` behind one index range (a :class:`SliceSource`)."""

    def __init__(self, parts: Mapping[str, SliceSource]) -> None:
        if not parts:
            raise ValueError("a mixed source needs at least one part")
        self.parts = dict(parts)
        self.offsets: dict[str, int] = {}
        total = 0
        for name, source in self.parts.items():
            self.offsets[name] = total
            total += len(source)
        self._len = total

    def __len__(self) -> int:
        return self._len

    def locate(self, index: int) -> tuple[str, int]:
        """(part name, index within the part) of subject ``index``."""
        if not 0 <= index < self._len:
            raise IndexError(f"subject {index} out of range for a source of {self._len}")
        for name in reversed(self.parts):
            if index >= self.offsets[name]:
                return name, index - self.offsets[name]
        raise AssertionError  # unreachable: offsets start at 0

    def get(self, index: int, position: float) -> SliceSubject:
        name, local = self.locate(index)
        return self.parts[name].get(local, position)

    def excluded(self, task: str) -> frozenset[int]:
        """Subjects never drawn for ``task`` (the parts' own exclusions, in global indices)."""
        out: set[int] = set()
        for name, source in self.parts.items():
            own = getattr(source, "excluded", None)
            if own is not None:
                out |= {self.offsets[name] + i for i in own(task)}
        return frozenset(out)
