"""The output-range convention: clamp to [0, 1], one-sided straight-through gradient."""

from __future__ import annotations

import torch

from neuralizer.model.output import clamp_output


def test_clamp_output_forward_and_gradient():
    x = torch.tensor([-0.5, -0.5, 0.3, 1.5, 1.5], requires_grad=True)
    y = clamp_output(x)
    assert torch.equal(y.detach(), torch.tensor([0.0, 0.0, 0.3, 1.0, 1.0]))
    grad = torch.tensor([1.0, -1.0, 2.0, 1.0, -1.0])
    y.backward(grad)
    # passed where in range, or where descent (x -= grad) moves x back towards [0, 1]
    assert torch.equal(x.grad, torch.tensor([0.0, -1.0, 2.0, 1.0, 0.0]))
