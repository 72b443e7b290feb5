"""Adaptation to the examples (``adapt=K``, issue 29): the loaded model never changes, a seed
fixes the result, one pair falls back, the memory is checked first, and episodes are well made."""

import nibabel as nib
import numpy as np
import pytest
import torch

import neuralizer
from neuralizer.infer.adapt import (
    ONE_PAIR,
    AdaptConfig,
    _episodes,
    adapt_model,
    check_adapt_memory,
    moving_parameters,
)
from neuralizer.infer.cli import options_from
from neuralizer.infer.plan import DEFAULT_ADAPT_STEPS, PredictOptions
from neuralizer.model.limits import MemoryLimitError, estimate_forward_bytes

from .conftest import phantom_volume, ras_affine, tiny_model


def _pairs_2d(n: int = 4, size: int = 32):
    """n (input, mask) pairs: a bright disc at a different place in each."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    outs = [((yy - 14 - i) ** 2 + (xx - 12 - 2 * i) ** 2 < 40).astype(np.float32) for i in range(n)]
    ins = [0.7 * o + 0.2 + 0.05 * rng.random((size, size)).astype(np.float32) for o in outs]
    return ins, outs


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_adapting_leaves_the_loaded_model_bit_identical_and_changes_the_result():
    model = tiny_model()
    before = _weights(model)
    ins, outs = _pairs_2d()
    plain = neuralizer.predict(ins[0], ins[1:], outs[1:], model=model, spacing=2.0)
    adapted = neuralizer.predict(ins[0], ins[1:], outs[1:], model=model, spacing=2.0, adapt=4)
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(not p.requires_grad or p.grad is None for p in model.parameters())
    assert not np.array_equal(plain.probabilities, adapted.probabilities)
    assert adapted.adapt_seconds is not None and adapted.adapt_seconds > 0
    assert any("adapted a copy of the model to the 3 example pairs: 4 steps" in s
               for s in adapted.steps)  # fmt: skip
    assert plain.adapt_seconds is None


def test_two_runs_with_the_same_seed_give_the_same_output():
    ins, outs = _pairs_2d()
    runs = [
        neuralizer.predict(
            ins[0], ins[1:], outs[1:], model=tiny_model(), spacing=2.0, adapt=3, seed=seed
        )  # fmt: skip
        for seed in (5, 5, 6)
    ]
    assert np.array_equal(runs[0].probabilities, runs[1].probabilities)
    assert not np.array_equal(runs[0].probabilities, runs[2].probabilities)


def test_one_pair_says_so_and_predicts_without_adapting():
    ins, outs = _pairs_2d(2)
    model = tiny_model()
    plain = neuralizer.predict(ins[0], ins[1:], outs[1:], model=model)
    one = neuralizer.predict(ins[0], ins[1:], outs[1:], model=model, adapt=10)
    assert ONE_PAIR in one.steps and one.adapt_seconds is None
    assert np.array_equal(plain.probabilities, one.probabilities)


def test_adapted_volume_is_deterministic_and_the_model_unchanged():
    image, labels = phantom_volume()
    target = nib.Nifti1Image(image, ras_affine())
    pairs = [phantom_volume(seed=s) for s in (1, 2, 3)]
    c_in = [nib.Nifti1Image(im, ras_affine()) for im, _ in pairs]
    c_out = [nib.Nifti1Image((lab == 3).astype(np.uint8), ras_affine()) for _, lab in pairs]
    model = tiny_model()
    before = _weights(model)
    kwargs = dict(model=model, align="none", adapt=2, seed=1)
    first = neuralizer.predict_volume(target, c_in, c_out, **kwargs)
    second = neuralizer.predict_volume(target, c_in, c_out, **kwargs)
    plain = neuralizer.predict_volume(target, c_in, c_out, model=model, align="none", seed=1)
    a, b = (np.asarray(r.probabilities.dataobj) for r in (first, second))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, np.asarray(plain.probabilities.dataobj))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert first.adapt_seconds is not None


def test_adaptation_memory_is_refused_before_any_work():
    model = tiny_model()
    config = AdaptConfig(steps=1)
    cfg = model.config
    need = estimate_forward_bytes(cfg.channels, cfg.in_channels, cfg.out_channels, config.batch,
                                  3, 32, 32, path="grad")  # fmt: skip
    check_adapt_memory(model, config, 4, (32, 32), need)  # fits exactly
    with pytest.raises(MemoryLimitError, match="adaptation step"):
        check_adapt_memory(model, config, 4, (32, 32), need - 1)
    ins, outs = _pairs_2d(5)  # 4 context pairs of 32×32 at 2 mm: the model's 32×32 grid
    predict_need = estimate_forward_bytes(cfg.channels, cfg.in_channels, cfg.out_channels, 1, 4,
                                          32, 32, path="fast")  # fmt: skip
    assert predict_need < need - 1
    with pytest.raises(MemoryLimitError, match="adaptation step"):
        neuralizer.predict(ins[0], ins[1:], outs[1:], model=model, adapt=2, spacing=2.0,
                           max_memory=need - 1)  # fmt: skip


def test_episodes_never_show_the_target_among_its_context():
    n_pairs, size = 5, 16
    # pair i's input is the constant (i + 1) / 10, its output a mask of i + 1 rows
    pairs_in = np.stack(
        [np.full((3, size, size), (i + 1) / 10, np.float32) for i in range(n_pairs)]
    )
    masks = np.zeros((n_pairs, 1, size, size), np.float32)
    for i in range(n_pairs):
        masks[i, 0, 4 : 5 + i] = 1
    config = AdaptConfig(steps=1, batch=3, max_context=3)
    rng = np.random.default_rng(0)
    sizes = set()
    for _ in range(20):
        x, y, c_in, c_out = _episodes(pairs_in[None], [masks[None]], np.array([0]), True, config,
                                      rng)  # fmt: skip
        assert x.shape == (3, 3, size, size) and y.shape == (3, 1, size, size)
        assert c_in.shape[:2] == c_out.shape[:2] == (3, c_in.shape[1])
        sizes.add(c_in.shape[1])
        assert set(np.unique(c_out.numpy())) <= {0.0, 1.0}  # masks stay masks
        for b in range(3):
            centre = (size // 2, size // 2)  # the warp keeps the centre inside
            target = round(float(x[b, 0, centre[0], centre[1]]) * 10)
            context = {round(float(c[0, centre[0], centre[1]]) * 10) for c in c_in[b]}
            assert target not in context and len(context) == c_in.shape[1]
    assert sizes == {1, 2, 3}  # 1 .. min(L − 1, max_context)


def test_decoder_only_adaptation_moves_only_the_decoder():
    model = tiny_model()
    ins, outs = _pairs_2d()
    pairs_in = np.stack([np.repeat(a[None], 3, 0) for a in ins])[None]
    maps = [np.stack(outs)[None, :, None]]
    adapted = adapt_model(model, pairs_in, maps, True, AdaptConfig(steps=2, parameters="decoder"))
    moved = {id(p) for p in moving_parameters(adapted.model, "decoder")}
    changed = []
    for (name, p), (_, q) in zip(adapted.model.named_parameters(), model.named_parameters(),
                                 strict=True):  # fmt: skip
        if id(p) not in moved:
            assert torch.equal(p, q), name
        elif not torch.equal(p, q):
            changed.append(name)
    # every decoder weight that reaches the output moves (the last block's context-stream
    # update feeds nothing and keeps its value)
    assert "out_conv.weight" in changed and "up.0.target_fuse.weight" in changed
    assert len(changed) > len(moved) // 2
    assert all(not n.startswith(("encoder", "target_embed", "context_embed")) for n in changed)


def test_adapt_option_is_checked_when_made():
    assert PredictOptions(adapt=True).adapt == DEFAULT_ADAPT_STEPS
    assert PredictOptions(adapt=0).adapt == 0 and PredictOptions(adapt=7.0).adapt == 7
    for bad in (-1, 2.5, "10", float("nan")):
        with pytest.raises(ValueError, match="adapt"):
            PredictOptions(adapt=bad)
    with pytest.raises(ValueError, match="steps"):
        AdaptConfig(steps=0)


def test_cli_adapt_alone_takes_the_default(tmp_path):
    import argparse

    from neuralizer.infer.cli import add_predict_command

    parser = argparse.ArgumentParser()
    add_predict_command(parser.add_subparsers())
    base = ["predict", "-i", "t.nii.gz", "-o", "o.nii.gz"]
    assert options_from(parser.parse_args(base)).adapt == 0
    assert options_from(parser.parse_args([*base, "--adapt"])).adapt == DEFAULT_ADAPT_STEPS
    assert options_from(parser.parse_args([*base, "--adapt", "30"])).adapt == 30
