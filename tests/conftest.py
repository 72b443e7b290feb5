import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings

MODEL_DATA = Path(__file__).resolve().parent / "model" / "data"


@pytest.fixture(scope="session")
def golden():
    """The authors' c=16 golden case: (released state dict, {target_in, ..., expected_output})."""
    data = np.load(MODEL_DATA / "official_layout_golden_c16.npz", allow_pickle=False)
    state_dict = {
        k.removeprefix("state_dict/"): torch.from_numpy(data[k])
        for k in data.files
        if k.startswith("state_dict/")
    }
    tensors = {k: torch.from_numpy(data[k]) for k in data.files if not k.startswith("state_dict/")}
    return state_dict, tensors


def make_inputs(batch, n_context, size, config, seed=0):
    """Random target_in, context_in, context_out for ``config`` (B×Cin×H×W, B×L×…)."""
    g = torch.Generator().manual_seed(seed)
    return (
        torch.rand(batch, config.in_channels, size, size, generator=g),
        torch.rand(batch, n_context, config.in_channels, size, size, generator=g),
        torch.rand(batch, n_context, config.out_channels, size, size, generator=g),
    )


@pytest.fixture(name="make_inputs", scope="session")
def make_inputs_fixture():
    return make_inputs


# Property-based tests (tests/reliability): a bounded, derandomised profile in the default suite;
# NEURALIZER_RELIABILITY=long (or pytest --hypothesis-profile=long) runs many more examples.
settings.register_profile(
    "suite",
    max_examples=50,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "long",
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile("long" if os.environ.get("NEURALIZER_RELIABILITY") == "long" else "suite")
