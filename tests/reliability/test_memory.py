"""The up-front memory estimate bounds the measured peak of a forward pass, and not by much."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_memory.py"


@pytest.mark.slow
def test_estimate_is_an_upper_bound_within_a_small_factor():
    cases = ["fast:1:16:96:32", "plain:1:4:96:32", "grad:1:4:64:32"]
    result = subprocess.run(
        [sys.executable, str(BENCH), *cases], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == len(cases)
    for row in rows:
        assert row["measured_MiB"] <= row["estimate_MiB"], row
        # The estimate includes 64 MiB of fixed slack; beyond it, at most 3× the measurement.
        assert row["estimate_MiB"] - 64 <= 3 * row["measured_MiB"], row
