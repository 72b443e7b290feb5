"""Losses and metrics, against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from neuralizer.tasks.losses import (
    batch_loss,
    dice_score,
    episode_losses,
    mse_loss,
    psnr,
    soft_dice_loss,
)


def t(values):
    return torch.tensor(values, dtype=torch.float32).reshape(1, 1, 1, -1)


def test_soft_dice_loss_values():
    target = t([1, 1, 0, 0])
    assert soft_dice_loss(t([1, 1, 0, 0]), target).item() == pytest.approx(0.0)
    # 2·1 + 1 over (1 + 2) + 1 -> 1 - 3/4
    assert soft_dice_loss(t([1, 0, 0, 0]), target).item() == pytest.approx(0.25)
    # soft: inter = 0.5 + 0.5, sums 0.5+0.5+0.5 = 1.5 and 2 -> 1 - 3/4.5
    assert soft_dice_loss(t([0.5, 0.5, 0.5, 0]), target).item() == pytest.approx(1 - 3 / 4.5)
    # empty target: predicting empty is perfect, predicting 2 pixels is 1 - 1/3
    assert soft_dice_loss(t([0, 0, 0, 0]), t([0, 0, 0, 0])).item() == pytest.approx(0.0)
    assert soft_dice_loss(t([1, 1, 0, 0]), t([0, 0, 0, 0])).item() == pytest.approx(2 / 3)


def test_mse_loss_is_ten_times_mse():
    pred, target = t([0.0, 0.5, 1.0, 1.0]), t([0.0, 0.0, 0.0, 1.0])
    mse = (0 + 0.25 + 1 + 0) / 4
    assert mse_loss(pred, target).item() == pytest.approx(10 * mse)


def test_episode_losses_choose_per_episode():
    raw = torch.cat([t([2.0, -1.0, 0.5, 0.5]), t([2.0, -1.0, 0.5, 0.5])])
    target = torch.cat([t([1, 0, 0, 0]), t([1, 0, 0, 0])])
    losses = episode_losses(raw, target, torch.tensor([True, False]))
    clamped = t([1.0, 0.0, 0.5, 0.5])
    # dice: inter 1, sums 2 + 1 -> 1 - 3/4; mse: (0 + 0 + .25 + .25) / 4 * 10
    assert losses.tolist() == pytest.approx([0.25, 1.25])
    assert losses[0].item() == pytest.approx(soft_dice_loss(clamped, target[:1]).item())
    assert batch_loss(raw, target, torch.tensor([True, False])).item() == pytest.approx(0.75)


def test_batch_loss_gradient_flows_and_stays_bounded():
    raw = torch.full((2, 1, 4, 4), -0.2, requires_grad=True)
    target = torch.zeros(2, 1, 4, 4)
    target[1, 0, 0, 0] = 1.0
    batch_loss(raw, target, torch.tensor([True, True])).backward()
    # empty target, output already below 0: no push further down
    assert torch.all(raw.grad[0] == 0)
    # the positive pixel is pulled up towards the range despite being clamped
    assert raw.grad[1, 0, 0, 0] < 0


def test_dice_score_values():
    target = t([1, 1, 0, 0])
    assert dice_score(t([0.9, 0.6, 0.1, 0.4]), target).item() == pytest.approx(1.0)
    assert dice_score(t([0.9, 0.4, 0.6, 0.0]), target).item() == pytest.approx(0.5)
    assert dice_score(t([0.5, 0.0, 0.0, 0.0]), target).item() == pytest.approx(2 / 3)
    assert dice_score(t([0, 0, 0, 0]), t([0, 0, 0, 0])).item() == 1.0  # both empty
    assert dice_score(t([0.7, 0, 0, 0]), t([0, 0, 0, 0])).item() == 0.0
    assert dice_score(t([0, 0, 0, 0]), target).item() == 0.0


def test_psnr_values():
    target = t([0.0, 0.0, 1.0, 1.0])
    # mse = 0.1² · 2 / 4 = 0.005 -> 10 log10(1 / 0.005)
    value = psnr(t([0.1, 0.0, 0.9, 1.0]), target).item()
    assert value == pytest.approx(10 * math.log10(200))
    # out-of-range predictions are clamped first: -1 -> 0, 2 -> 1
    assert math.isinf(psnr(t([-1.0, 0.0, 2.0, 1.0]), target).item())
    assert psnr(t([1.0, 1.0, 0.0, 0.0]), target).item() == pytest.approx(0.0)
