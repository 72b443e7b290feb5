import numpy as np
import pytest

from neuralizer.data.phantom import phantom_subject
from neuralizer.evaluate.baselines import fuse, mean_baseline, propagate
from neuralizer.evaluate.metrics import dice, score


def test_dice_on_hand_made_masks_thresholds_clamped_raw_output():
    target = np.zeros((2, 1, 4, 4), np.float32)
    target[:, :, :2] = 1  # 8 pixels
    pred = np.full((2, 1, 4, 4), -0.3, np.float32)
    pred[0, :, :1] = 1.7  # 4 pixels, all inside: Dice = 2*4 / (4 + 8)
    pred[1, :, :2] = 0.49  # below the threshold: empty prediction, Dice 0
    assert score(pred, target, True) == pytest.approx([2 / 3, 0.0])
    assert score(np.zeros_like(target), np.zeros_like(target), True) == pytest.approx([1.0, 1.0])


def test_dice_of_one_volume_of_booleans():
    truth = np.zeros((3, 4, 5), bool)
    truth[0] = True  # 20 voxels
    pred = np.zeros_like(truth)
    pred[0, :2] = True  # 10 voxels, all inside: Dice = 2*10 / 30
    assert dice(pred, truth) == pytest.approx(2 / 3)
    assert dice(~truth, truth) == 0.0
    assert dice(np.zeros_like(truth), np.zeros_like(truth)) == 1.0
    assert dice(pred[::-1, :, ::-1], truth[::-1, :, ::-1]) == pytest.approx(2 / 3)  # views


def test_psnr_on_hand_made_images_clamps_to_unit_range():
    target = np.full((2, 1, 4, 4), 0.1, np.float32)
    pred = np.stack([target[0] + 0.1, np.full_like(target[0], -5.0)])  # clamp: 0 -> error 0.1
    assert score(pred, target, False) == pytest.approx([20.0, 20.0], abs=1e-4)


def test_mean_baseline_is_the_hand_computed_mean_and_a_majority_vote():
    out = np.zeros((3, 1, 2, 2), np.float32)
    out[0, 0] = [[1, 0], [1, 1]]
    out[1, 0] = [[1, 0], [0, 1]]
    out[2, 0] = [[0, 0], [0, 1]]
    expected = np.array([[[2 / 3, 0], [1 / 3, 1]]], np.float32)
    np.testing.assert_allclose(mean_baseline(out), expected, rtol=1e-6)
    assert score(fuse(out)[None], np.array([[[[1, 0], [0, 1]]]]), True)[0] == 1.0
    with pytest.raises(ValueError):
        mean_baseline(out[:0])


def test_atlas_propagation_recovers_a_known_shift_of_a_label_map():
    subject = phantom_subject(3, size=64)
    image = (subject.tissue / 12.0).astype(np.float32)
    label = np.isin(subject.labels["phantom"], (1, 4)).astype(np.float32)  # left WM + nucleus
    shift = (3, -4)
    target_in = np.zeros((3, 64, 64), np.float32)
    target_in[0] = np.roll(image, shift, (0, 1))
    target_out = np.roll(label, shift, (0, 1))[None, None]
    context_in = np.zeros((1, 3, 64, 64), np.float32)
    context_in[0, 0] = image
    warped = propagate(target_in, context_in, label[None, None], segmentation_like=True)
    assert warped.shape == (1, 1, 64, 64)
    assert set(np.unique(warped)) <= {0.0, 1.0}  # nearest neighbour keeps labels
    unregistered = score(label[None, None], target_out, True)[0]
    registered = score(fuse(warped)[None], target_out, True)[0]
    assert unregistered < 0.75 and registered > 0.95
    # A shift is affine: the affine stage alone ("atlas-affine") recovers it as well.
    affine = propagate(
        target_in, context_in, label[None, None], segmentation_like=True, deformable=False
    )
    assert score(fuse(affine)[None], target_out, True)[0] > 0.95


def test_atlas_propagation_is_reproducible():
    rng = np.random.default_rng(0)
    target_in = rng.uniform(size=(3, 32, 32)).astype(np.float32)
    context_in = rng.uniform(size=(2, 3, 32, 32)).astype(np.float32)
    context_out = rng.uniform(size=(2, 1, 32, 32)).astype(np.float32)
    a, b = (propagate(target_in, context_in, context_out, segmentation_like=False) for _ in "ab")
    np.testing.assert_array_equal(a, b)
