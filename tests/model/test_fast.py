import pytest
import torch

from neuralizer.model import ModelConfig, Neuralizer
from neuralizer.model import fast as fast_module


@pytest.mark.parametrize("n_context", [1, 3, 32, 64])
@pytest.mark.parametrize("chunk_bytes", [fast_module.CHUNK_BYTES, 4096])
def test_fast_matches_plain(n_context, chunk_bytes, monkeypatch, make_inputs):
    """Exact algebra, chunking and layout change rounding only: agreement to 1e-5 relative."""
    monkeypatch.setattr(fast_module, "CHUNK_BYTES", chunk_bytes)
    torch.manual_seed(1)
    config = ModelConfig(channels=16, stages=4)
    model = Neuralizer(config).eval()
    target_in, context_in, context_out = make_inputs(2, n_context, 32, config, seed=n_context)
    with torch.inference_mode():
        plain = model(target_in, context_in, context_out, fast=False)
        fast = model(target_in, context_in, context_out)  # inference mode picks the fast path
    scale = plain.abs().max()
    assert ((fast - plain).abs().max() / scale).item() <= 1e-5


def test_fast_path_is_chosen_only_without_autograd(monkeypatch, make_inputs):
    calls = []
    monkeypatch.setattr(fast_module, "fast_forward", lambda *a: calls.append(1) or a[1][:, :1])
    config = ModelConfig(channels=4, stages=2)
    model = Neuralizer(config)
    inputs = make_inputs(1, 2, 8, config)
    model(*inputs)
    assert calls == []
    with torch.no_grad():
        model(*inputs)
    assert calls == [1]
    with pytest.raises(ValueError, match="inference-only"):
        model(*inputs, fast=True)


@pytest.mark.parametrize("chunk_bytes", [fast_module.CHUNK_BYTES, 4096])
def test_counts_equal_repeating_the_pairs(chunk_bytes, monkeypatch, make_inputs):
    """An ensemble's draw with replacement: each distinct pair once, with its multiplicity, gives
    the plain form's result on the pairs repeated (1e-5 relative); bad counts are refused."""
    monkeypatch.setattr(fast_module, "CHUNK_BYTES", chunk_bytes)
    torch.manual_seed(2)
    config = ModelConfig(channels=16, stages=4)
    model = Neuralizer(config).eval()
    target_in, context_in, context_out = make_inputs(2, 4, 32, config, seed=5)
    pick = torch.tensor([2, 0, 2, 3, 2, 0])
    drawn, counts = torch.unique(pick, return_counts=True)
    with torch.inference_mode():
        repeated = model(target_in, context_in[:, pick], context_out[:, pick], fast=False)
        once = model(target_in, context_in[:, drawn], context_out[:, drawn], counts=counts)
        unweighted = model(target_in, context_in[:, drawn], context_out[:, drawn])
        for bad in (torch.tensor([1, 2]), torch.tensor([1, 0, 2]), torch.tensor([1, -1, 2])):
            with pytest.raises(ValueError, match="counts"):
                model(target_in, context_in[:, drawn], context_out[:, drawn], counts=bad)
    scale = repeated.abs().max()
    assert ((once - repeated).abs().max() / scale).item() <= 1e-5
    assert ((unweighted - repeated).abs().max() / scale).item() > 1e-3  # the counts matter
    with pytest.raises(ValueError, match="fast path"):
        model(target_in, context_in[:, drawn], context_out[:, drawn], counts=counts)
