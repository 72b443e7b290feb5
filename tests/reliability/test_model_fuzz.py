"""Property-based tests of ``Neuralizer.forward``: generated valid inputs give finite outputs of
the right shape on every path; generated bad inputs give a ValueError naming what was wrong,
raised before any heavy work (no traceback from inside torch)."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from neuralizer.model import ModelConfig, Neuralizer
from neuralizer.model.guards import MAX_ABS_VALUE
from neuralizer.model.limits import MemoryLimitError, estimate_forward_bytes, parse_memory

CONFIG = ModelConfig(channels=4, stages=3)  # H, W multiples of 4
NAMES = ("target_in", "context_in", "context_out")
FAULTS = ("rank", "size", "zero", "multiple", "nan", "value", "dtype", "type", "device", "memory")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return Neuralizer(CONFIG).eval()


@st.composite
def valid_inputs(draw):
    """(target_in, context_in, context_out) of any valid size, content and memory layout."""
    batch, n_context = draw(st.integers(1, 2)), draw(st.integers(1, 5))
    height, width = 4 * draw(st.integers(1, 8)), 4 * draw(st.integers(1, 8))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31)))
    tensors = [
        torch.rand(batch, 3, height, width, generator=g),
        torch.rand(batch, n_context, 3, height, width, generator=g),
        (torch.rand(batch, n_context, 1, height, width, generator=g) > 0.5).float(),
    ]
    content = draw(st.sampled_from(["images", "constant", "empty masks", "extreme", "negative"]))
    if content == "constant":  # a blank target and blank context: still a valid question
        value = draw(st.floats(0, 1))
        tensors = [torch.full_like(t, value) for t in tensors]
    elif content == "empty masks":
        tensors[2].zero_()
    elif content == "extreme":
        tensors = [t * draw(st.floats(-MAX_ABS_VALUE, MAX_ABS_VALUE)) for t in tensors]
    elif content == "negative":
        tensors = [t - 1 for t in tensors]
    layout = draw(st.sampled_from(["contiguous", "channels_last", "strided", "expanded"]))
    if layout == "channels_last":
        tensors[0] = tensors[0].contiguous(memory_format=torch.channels_last)
    elif layout == "strided":  # non-contiguous views of the same values
        tensors = [t.transpose(-1, -2).contiguous().transpose(-1, -2) for t in tensors]
    elif layout == "expanded":  # one pair repeated L times without copying
        tensors[1] = tensors[1][:, :1].expand_as(tensors[1])
        tensors[2] = tensors[2][:, :1].expand_as(tensors[2])
    return tuple(tensors)


@given(inputs=valid_inputs())
def test_valid_inputs_give_finite_results_on_every_path(model, inputs):
    before = [t.clone() for t in inputs]
    batch, _, height, width = inputs[0].shape
    with torch.no_grad():
        fast = model(*inputs)
        plain = model(*inputs, fast=False)
    trained = model(*inputs)
    trained.square().mean().backward()
    for result in (fast, plain, trained):
        assert result.shape == (batch, CONFIG.out_channels, height, width)
        assert torch.isfinite(result).all()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    model.zero_grad(set_to_none=True)
    scale = plain.abs().max().item() + 1e-6
    assert (fast - plain).abs().max().item() <= 1e-4 * scale
    for old, new in zip(before, inputs, strict=True):
        assert torch.equal(old, new)  # inputs are never written to


def _reshape(tensor, dim, size):
    shape = list(tensor.shape)
    shape[dim] = size
    return torch.rand(shape)


@st.composite
def bad_inputs(draw):
    """One valid triple with one thing broken; returns (inputs, kwargs, words the error names)."""
    target_in, context_in, context_out = draw(valid_inputs())
    tensors = [target_in.contiguous(), context_in.contiguous(), context_out.contiguous()]
    which = draw(st.integers(0, 2))
    name = NAMES[which]
    fault = draw(st.sampled_from(FAULTS))
    kwargs = {}
    if fault == "rank":
        tensors[which] = tensors[which][0] if draw(st.booleans()) else tensors[which][None]
        words = [name, "rank"]
    elif fault == "size":  # B, L, C, H or W of one tensor disagrees with the others
        dim = draw(st.integers(0, tensors[which].ndim - 1))
        size = tensors[which].shape[dim] + draw(st.sampled_from([1, 2, 4, 8]))
        tensors[which] = _reshape(tensors[which], dim, size)
        words = ["expected"]
    elif fault == "zero":  # a zero batch, context count or image size, consistently
        dim = draw(st.sampled_from(["B", "L", "H"]))
        if dim == "L":
            tensors[1], tensors[2] = tensors[1][:, :0], tensors[2][:, :0]
            words = ["L ≥ 1"]
        else:
            tensors = [t[:0] if dim == "B" else t[..., :0, :] for t in tensors]
            words = ["target_in"]
    elif fault == "multiple":  # H not a multiple of 4, consistently
        extra = draw(st.integers(1, 3))
        tensors = [torch.cat([t, t[..., :extra, :]], dim=-2) for t in tensors]
        words = ["multiples of 4"]
    elif fault == "nan":
        flat = tensors[which].reshape(-1)
        flat[draw(st.integers(0, flat.numel() - 1))] = draw(
            st.sampled_from([math.nan, math.inf, -math.inf])
        )
        words = [name, "NaN or Inf"]
    elif fault == "value":
        flat = tensors[which].reshape(-1)
        magnitude = draw(st.floats(MAX_ABS_VALUE * 1.01, 3e38))
        flat[draw(st.integers(0, flat.numel() - 1))] = magnitude * draw(st.sampled_from([1, -1]))
        words = [name, "rescale"]
    elif fault == "dtype":
        dtype = draw(
            st.sampled_from(
                [torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.uint8, torch.bool]
            )
        )
        tensors[which] = tensors[which].to(dtype)
        words = [name]
    elif fault == "type":
        tensors[which] = draw(
            st.sampled_from([tensors[which].numpy(), tensors[which].tolist(), None, 1.0])
        )
        words = [name, "torch.Tensor"]
    elif fault == "device":
        tensors[which] = tensors[which].to("meta")
        words = [name, "meta"]
    else:  # a valid question that does not fit in the allowed memory
        kwargs["max_memory"] = draw(st.integers(0, 2**20))
        words = ["memory", "max_memory"]
    return tensors, kwargs, words


@given(case=bad_inputs(), grad=st.booleans())
def test_bad_inputs_raise_value_error_naming_the_problem(model, case, grad):
    tensors, kwargs, words = case
    with torch.set_grad_enabled(grad), pytest.raises(ValueError) as error:
        model(*tensors, **kwargs)
    message = str(error.value)
    assert "\n" not in message
    for word in words:
        assert word in message


@given(
    batch=st.integers(1, 2**10),
    n_context=st.integers(1, 2**12),
    side=st.integers(2**14, 2**16).map(lambda n: 4 * n),
    path=st.sampled_from(["fast", "plain", "grad"]),
)
def test_huge_inputs_are_refused_up_front_with_the_estimate(model, batch, n_context, side, path):
    """Shapes of terabytes, as expanded views (no memory behind them): refused in no time."""
    target_in = torch.zeros(()).expand(batch, 3, side, side)
    context_in = torch.zeros(()).expand(batch, n_context, 3, side, side)
    context_out = torch.zeros(()).expand(batch, n_context, 1, side, side)
    estimate = estimate_forward_bytes(4, 3, 1, batch, n_context, side, side, path=path)
    assert estimate > 2**36  # more than this machine has: the check must refuse it
    with torch.set_grad_enabled(path == "grad"), pytest.raises(MemoryLimitError) as error:
        model(target_in, context_in, context_out, fast=path == "fast")
    assert "GiB" in str(error.value) and "--max-memory" in str(error.value)


def test_max_memory_inf_allows_what_the_default_refuses(model, make_inputs):
    inputs = make_inputs(1, 2, 8, CONFIG)
    with torch.no_grad(), pytest.raises(MemoryLimitError):
        model(*inputs, max_memory=1000)
    with torch.no_grad():
        assert torch.isfinite(model(*inputs, max_memory=math.inf)).all()


@given(text=st.text(max_size=12))
def test_parse_memory_accepts_sizes_and_rejects_the_rest_clearly(text):
    try:
        value = parse_memory(text)
    except ValueError as error:
        assert "memory size" in str(error)
    else:
        assert value is not None and value >= 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [("8G", 8 * 2**30), ("512m", 512 * 2**20), ("1.5GiB", 1.5 * 2**30), ("inf", math.inf)],
)
def test_parse_memory_units(text, expected):
    assert parse_memory(text) == expected


def test_numpy_inputs_are_named(model):
    array = np.zeros((1, 3, 8, 8), np.float32)
    with pytest.raises(ValueError, match="target_in must be a torch.Tensor"):
        model(array, torch.zeros(1, 1, 3, 8, 8), torch.zeros(1, 1, 1, 8, 8))
