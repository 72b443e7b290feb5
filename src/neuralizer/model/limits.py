"""Resource limits of a forward pass: an up-front memory estimate, checked before any work.

The estimate counts the float32 tensors a pass holds at its peak. Its unit is the context
stream at full resolution, ``B·L·c·H·W`` values: the plain form keeps several copies of it (and
every intermediate when autograd records the graph), the fast path about one per resolution
(``neuralizer.model.fast``). The factors below were measured as peak resident memory of one pass
(``benchmarks/bench_memory.py``, docs/reliability.md) and rounded up, so the estimate is an upper
bound, and within a small factor of the measurement (tests/reliability/test_memory.py).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field

# Peak bytes per byte of the full-resolution streams, by path: (context stream, target stream).
# Measured (docs/reliability.md): fast 1.75 and 9.5, plain 10.5, autograd 27-30, plus ~20 MiB.
_FACTORS = {"fast": (2.0, 11.0), "plain": (12.0, 12.0), "grad": (34.0, 34.0)}
_FIXED_BYTES = 64 * 2**20  # workspace of the convolution library, allocator slack
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


class MemoryLimitError(ValueError):
    """A forward pass would need more memory than allowed (a ValueError: the caller's input)."""


def estimate_forward_bytes(
    channels: int,
    in_channels: int,
    out_channels: int,
    batch: int,
    n_context: int,
    height: int,
    width: int,
    *,
    path: str,
) -> int:
    """Upper bound of the peak memory of one forward pass, in bytes.

    ``path``: "fast" (inference path), "plain" (``fast=False`` without autograd) or "grad"
    (training: autograd keeps every intermediate for the backward pass).
    """
    target_stream = batch * height * width * channels * 4
    pairs = batch * n_context * height * width * (in_channels + out_channels) * 4
    context_factor, target_factor = _FACTORS[path]
    return int(
        context_factor * n_context * target_stream
        + target_factor * target_stream
        + 2 * pairs
        + _FIXED_BYTES
    )


#: The default limit never exceeds this fraction of the machine's memory (the system, its file
#: cache and other programs keep the rest), whatever is free at the moment.
DEFAULT_FRACTION = 0.8


def default_memory_limit() -> int:
    """Memory available now (``MemAvailable`` of /proc/meminfo), at most :data:`DEFAULT_FRACTION`
    of the physical memory."""
    try:
        physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        physical = 2**63
    available = physical
    try:
        with open("/proc/meminfo") as file:
            for line in file:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(min(available, DEFAULT_FRACTION * physical))


def format_bytes(value: float) -> str:
    if math.isinf(value):
        return "unlimited"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{int(value)} B"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover


def parse_memory(text: str | float | int | None) -> float | None:
    """'8G', '512M', '1.5g', '1000000' (bytes), 'inf'/'none' (no limit) → bytes; None stays None."""
    if text is None or isinstance(text, int | float):
        return None if text is None else float(text)
    value = text.strip().lower().removesuffix("b").removesuffix("i")
    if value in ("inf", "none", "unlimited"):
        return math.inf
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmgt]?)", value)
    if not match:
        raise ValueError(
            f"cannot read the memory size {text!r}: give bytes or a number with K, M, G or T "
            "(e.g. 8G), or 'inf' for no limit"
        )
    return float(match.group(1)) * _UNITS[match.group(2)]


def check_memory(estimate: int, max_memory: float | None, what: str) -> None:
    """Raise MemoryLimitError if ``estimate`` exceeds ``max_memory`` (None: memory available)."""
    limit = default_memory_limit() if max_memory is None else max_memory
    if estimate > limit:
        source = "the memory available now" if max_memory is None else "max_memory"
        raise MemoryLimitError(
            f"{what} needs an estimated {format_bytes(estimate)}, more than {source} "
            f"({format_bytes(limit)}). Use fewer context pairs, a smaller batch or smaller "
            "images, or raise the limit (max_memory=… in Python, --max-memory on the command "
            "line; 'inf' disables the check)."
        )


@dataclass(frozen=True)
class ResourcePlan:
    """Estimated bytes of each part of a job; :meth:`check` compares their sum with a limit."""

    what: str
    parts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    def describe(self) -> str:
        return ", ".join(f"{name} {format_bytes(b)}" for name, b in self.parts.items() if b)

    def check(self, max_memory: float | None) -> None:
        """MemoryLimitError (a ValueError) if the total exceeds ``max_memory`` bytes (None: the
        default limit), naming the parts."""
        check_memory(self.total, max_memory, f"{self.what} ({self.describe()})")
