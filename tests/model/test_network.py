import pytest
import torch

from neuralizer.model import ModelConfig, Neuralizer
from neuralizer.model.guards import validate_inputs
from neuralizer.model.released import model_from_released


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    config = ModelConfig(channels=8, stages=3)
    return Neuralizer(config).eval(), config


@pytest.mark.parametrize("fast", [False, True])
def test_golden_released_weights(golden, fast):
    state_dict, t = golden
    model = model_from_released(state_dict)
    assert model.config == ModelConfig(channels=16, stages=4, in_channels=3, out_channels=3)
    with torch.set_grad_enabled(not fast):
        out = model(t["target_in"], t["context_in"], t["context_out"], fast=fast)
    assert out.shape == t["expected_output"].shape
    assert (out - t["expected_output"]).abs().max().item() <= 1e-5


def test_parameter_counts():
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(Neuralizer(ModelConfig())) == 1_273_601
    assert count(Neuralizer(ModelConfig(out_channels=3))) == 1_273_859


def test_released_layout_covers_every_parameter():
    """The authors' c=64 key list maps one-to-one onto our parameters, shapes included."""
    from pathlib import Path

    from neuralizer.model.released import config_from_released, convert_released_keys

    lines = (Path(__file__).parent / "data" / "official_state_dict_keys_c64.txt").read_text()
    fake = {}
    for line in lines.splitlines():
        key, shape = line.split(" ", 1)
        fake[key] = torch.zeros(eval(shape))  # shapes are tuples of ints
    config = config_from_released(fake)
    assert config == ModelConfig(channels=64, stages=4, in_channels=3, out_channels=3)
    ours = {k: tuple(v.shape) for k, v in Neuralizer(config).state_dict().items()}
    assert {k: tuple(v.shape) for k, v in convert_released_keys(fake).items()} == ours


def test_every_parameter_gets_a_gradient(small, make_inputs):
    """All but the last block's context update, whose result nothing reads (as in the authors'
    layout, which keeps those weights), receive a non-zero gradient."""
    model, config = small
    model.train()
    target_in, context_in, context_out = make_inputs(2, 3, 16, config)
    model(target_in, context_in, context_out).square().mean().backward()
    last = f"decoder.{config.stages - 2}.context_combine."
    without = {n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum()}
    assert without == {last + "weight", last + "bias"}
    model.zero_grad(set_to_none=True)
    model.eval()


@pytest.mark.parametrize("fast", [False, True])
def test_context_permutation_and_duplication_invariance(small, fast, make_inputs):
    model, config = small
    target_in, context_in, context_out = make_inputs(2, 5, 16, config)
    with torch.no_grad():
        reference = model(target_in, context_in, context_out, fast=fast)
        order = torch.tensor([3, 0, 4, 1, 2])
        permuted = model(target_in, context_in[:, order], context_out[:, order], fast=fast)
        doubled = model(
            target_in,
            context_in.repeat(1, 2, 1, 1, 1),
            context_out.repeat(1, 2, 1, 1, 1),
            fast=fast,
        )
    assert (permuted - reference).abs().max() <= 1e-5
    assert (doubled - reference).abs().max() <= 1e-5
    # The context matters: a different context changes the result.
    with torch.no_grad():
        other = model(target_in, context_in, context_out.flip(-1), fast=fast)
    assert (other - reference).abs().max() > 1e-4


@pytest.mark.parametrize("fast", [False, True])
def test_batch_items_are_independent(small, fast, make_inputs):
    model, config = small
    target_in, context_in, context_out = make_inputs(3, 2, 16, config)
    with torch.no_grad():
        together = model(target_in, context_in, context_out, fast=fast)
        alone = torch.cat(
            [
                model(
                    target_in[i : i + 1], context_in[i : i + 1], context_out[i : i + 1], fast=fast
                )
                for i in range(3)
            ]
        )
    assert (together - alone).abs().max() <= 1e-5


@pytest.mark.parametrize(
    ("shapes", "names"),
    [
        (
            ((3, 16, 16), (1, 2, 3, 16, 16), (1, 2, 1, 16, 16)),
            ["target_in", "(3, 16, 16)", "rank 4"],
        ),
        (((1, 3, 16, 16), (2, 3, 16, 16), (1, 2, 1, 16, 16)), ["context_in", "rank 5"]),
        (((1, 3, 16, 16), (1, 0, 3, 16, 16), (1, 0, 1, 16, 16)), ["context_in", "L ≥ 1"]),
        (
            ((1, 3, 16, 16), (1, 2, 3, 16, 16), (1, 3, 1, 16, 16)),
            ["context_out", "(1, 3, 1, 16, 16)"],
        ),
        (
            ((1, 3, 16, 16), (1, 2, 3, 16, 16), (1, 2, 2, 16, 16)),
            ["context_out", "(1, 2, 2, 16, 16)"],
        ),
        (
            ((2, 3, 16, 16), (1, 2, 3, 16, 16), (1, 2, 1, 16, 16)),
            ["context_in", "(1, 2, 3, 16, 16)"],
        ),
        (((1, 1, 16, 16), (1, 2, 1, 16, 16), (1, 2, 1, 16, 16)), ["target_in", "3 channels"]),
        (((1, 3, 18, 16), (1, 2, 3, 18, 16), (1, 2, 1, 18, 16)), ["target_in", "multiples of 4"]),
        (((1, 3, 16, 16), (1, 2, 3, 16, 8), (1, 2, 1, 16, 8)), ["context_in", "(1, 2, 3, 16, 8)"]),
    ],
)
def test_bad_shapes_raise_value_error_naming_the_tensor(small, shapes, names):
    model, config = small
    tensors = [torch.zeros(s) for s in shapes]
    with pytest.raises(ValueError) as error:
        model(*tensors)
    for part in names:
        assert part in str(error.value)


def test_integer_tensors_are_rejected(small, make_inputs):
    _, config = small
    target_in, context_in, context_out = make_inputs(1, 2, 16, config)
    with pytest.raises(ValueError, match="context_out must be a floating-point"):
        validate_inputs(config, target_in, context_in, context_out.long())


@pytest.mark.parametrize("values", [{"channels": 0}, {"stages": 2.5}, {"unknown": 1}])
def test_model_config_rejects_bad_values(values):
    with pytest.raises(ValueError):
        ModelConfig.from_dict(values)
