"""neuralizer.predict on 2D arrays, the ensemble machinery, and 2D files through the CLI."""

import numpy as np
import pytest
import torch

import neuralizer
from neuralizer.cli import main
from neuralizer.infer.ensemble import EnsembleConfig, random_affine, run_ensemble, warp
from neuralizer.infer.outputs import plan_outputs

from .conftest import IdentityModel, oracle, tiny_model


def _slices(n=4, size=48, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    images, masks = [], []
    for _ in range(n):
        cy, cx = rng.uniform(0.35, 0.65, 2)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 < 0.08
        images.append((disc * (0.5 + xx) + 0.05 * rng.random((size, size))).astype(np.float32))
        masks.append(((yy - cy) ** 2 + (xx - cx) ** 2 < 0.02).astype(np.float32))
    return np.stack(images), np.stack(masks)


def test_predict_2d_shapes_types_and_spacing():
    images, masks = _slices()
    result = neuralizer.predict(images[0], images[1:], masks[1:], model=tiny_model(), spacing=1.5)
    assert result.task == "segmentation"
    assert result.prediction.shape == (48, 48) and result.prediction.dtype == np.uint8
    assert result.probabilities.shape == (48, 48) and result.uncertainty is None
    assert any("1.5 mm" in s for s in result.steps)
    tensor = neuralizer.predict(torch.from_numpy(images[0]), torch.from_numpy(images[1:]),
                                torch.from_numpy(masks[1:]), model=tiny_model())  # fmt: skip
    assert tensor.prediction.shape == (48, 48)


def test_identity_2d_in_the_output_scale():
    images, _ = _slices()
    c_out = images[1:] * 50 - 7
    result = neuralizer.predict(images[0], images[1:], c_out, model=oracle(IdentityModel))
    assert result.task == "image" and result.prediction.dtype == np.float32
    lo = np.mean([np.percentile(c[c != 0], 0.5) for c in c_out])
    hi = np.mean([np.percentile(c[c != 0], 99.5) for c in c_out])
    assert lo - 1e-3 <= result.prediction.min() and result.prediction.max() <= hi + 1e-3
    assert np.corrcoef(result.prediction.ravel(), images[0].ravel())[0, 1] > 0.95


def test_multichannel_2d_input():
    images, masks = _slices()
    two = np.stack([images, masks * 0.5], axis=1)  # L×2×H×W
    result = neuralizer.predict(two[0], two[1:], masks[1:], model=tiny_model())
    assert result.prediction.shape == (48, 48)
    with pytest.raises(ValueError, match="channel|shape"):
        neuralizer.predict(two[0], images[1:], masks[1:], model=tiny_model())


def test_plan_outputs():
    binary = [np.array([[0, 1], [1, 0]], np.float32)]
    assert plan_outputs("auto", None, binary).kind == "segmentation"
    assert plan_outputs("image", None, binary).kind == "image"
    labels = [np.array([[0, 4], [9, 4]], np.float32)]
    assert plan_outputs("auto", "all", labels).label_values == (4, 9)
    assert plan_outputs("auto", [9], labels).label_values == (9,)
    with pytest.raises(ValueError, match="binary"):
        plan_outputs("segmentation", None, labels)
    with pytest.raises(ValueError, match="empty"):
        plan_outputs("auto", None, [])


def test_warp_inverse_round_trip():
    g = torch.Generator().manual_seed(0)
    matrix = random_affine(EnsembleConfig(passes=2), g)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    image = (torch.sin(6 * xx) * torch.cos(4 * yy))[None, None].float()
    back = warp(warp(image, matrix), torch.linalg.inv(matrix))
    assert (back - image)[..., 12:-12, 12:-12].abs().max() < 0.05


def test_ensemble_bootstrap_without_affine_on_identical_pairs_has_no_spread():
    model = tiny_model()
    x = torch.rand(2, 3, 32, 32)
    pair_in, pair_out = torch.rand(1, 1, 3, 32, 32), torch.rand(1, 1, 1, 32, 32)
    c_in, c_out = pair_in.expand(2, 4, -1, -1, -1), pair_out.expand(2, 4, -1, -1, -1)
    still = EnsembleConfig(passes=4, rotation_deg=0, scaling=0, translation=0)
    mean, spread = run_ensemble(model, x, c_in, c_out, config=still,
                                generator=torch.Generator().manual_seed(0))  # fmt: skip
    single, none = run_ensemble(model, x, c_in, c_out, config=EnsembleConfig(),
                                generator=torch.Generator())  # fmt: skip
    assert none is None and spread.max() < 1e-5
    assert torch.allclose(mean, single, atol=1e-5)
    with pytest.raises(ValueError, match="ensemble"):
        EnsembleConfig(passes=0)


def test_cli_2d_png_and_npy(tmp_path, tiny_checkpoint):
    from PIL import Image

    images, masks = _slices()
    target = tmp_path / "t.png"
    Image.fromarray((images[0] / images[0].max() * 255).astype(np.uint8)).save(target)
    c_in, c_out = [], []
    for i in (1, 2, 3):
        np.save(tmp_path / f"in{i}.npy", images[i])
        Image.fromarray((masks[i] * 255).astype(np.uint8)).save(tmp_path / f"out{i}.png")
        c_in.append(str(tmp_path / f"in{i}.npy"))
        c_out.append(str(tmp_path / f"out{i}.png"))
    np.save(tmp_path / "bin_out.npy", masks[1])
    argv = ["predict", "-i", str(target), "-o", str(tmp_path / "r.npy"), "--model",
            str(tiny_checkpoint), "--context-in", *c_in, "--context-out", *c_out,
            "--task", "image", "--ensemble", "2", "--uncertainty", str(tmp_path / "u.npy"),
            "--qc", str(tmp_path / "qc.png")]  # fmt: skip
    assert main(argv) == 0
    assert np.load(tmp_path / "r.npy").shape == (48, 48)
    assert np.load(tmp_path / "u.npy").shape == (48, 48)
    assert (tmp_path / "qc.png").stat().st_size > 1000
    argv = ["predict", "-i", f"{target}+{tmp_path / 'out1.png'}", "-o", str(tmp_path / "r.png"),
            "--model", str(tiny_checkpoint), "--context-in",
            f"{tmp_path / 'in1.npy'}+{tmp_path / 'bin_out.npy'}", "--context-out",
            str(tmp_path / "bin_out.npy")]  # fmt: skip
    assert main(argv) == 0
    assert np.asarray(Image.open(tmp_path / "r.png")).shape == (48, 48)


def test_ensemble_runs_each_drawn_pair_once(monkeypatch, make_inputs):
    """Bootstrap passes give each distinct drawn pair to the model once, with its count: fewer
    members, the same means as the pairs repeated (1e-5), and the same draws and affines."""
    from neuralizer.model import ModelConfig, Neuralizer

    torch.manual_seed(3)
    config = ModelConfig(channels=8, stages=3)
    model = Neuralizer(config).eval()
    target_in, context_in, context_out = make_inputs(3, 6, 32, config, seed=9)
    seen = []
    forward = model.forward
    monkeypatch.setattr(
        model, "forward", lambda *a, **k: seen.append(a[1].shape[1]) or forward(*a, **k)
    )

    def run():
        generator = torch.Generator().manual_seed(4)
        ensemble = EnsembleConfig(passes=5)
        return run_ensemble(model, target_in, context_in, context_out, config=ensemble,
                            generator=generator)  # fmt: skip

    mean, sd = run()
    once = list(seen)
    seen.clear()
    monkeypatch.setattr(torch, "unique", lambda pick, **_: (pick, torch.ones_like(pick)))
    mean_repeated, sd_repeated = run()
    assert seen == [6] * 5 and all(n <= 6 for n in once) and sum(once) < sum(seen)
    torch.testing.assert_close(mean, mean_repeated, rtol=1e-5, atol=1e-6)
    # the s.d. is accumulated stably (Welford): where the passes agree it stays near 0
    torch.testing.assert_close(sd, sd_repeated, rtol=1e-4, atol=1e-5)
