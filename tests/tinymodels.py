"""Factories for ``load_model("tinymodels:...")`` in tests (subprocesses import them by name)."""

import torch
from torch import nn


def tiny_classifier() -> nn.Module:
    """A cheap deterministic 4-class CNN that accepts any input size."""
    g = torch.Generator().manual_seed(0)
    net = nn.Sequential(nn.AvgPool2d(8), nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                        nn.Flatten(), nn.Linear(24, 4))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return net


class _Indifferent(nn.Module):
    def __init__(self):
        super().__init__()
        self.logits = nn.Parameter(torch.tensor([2.0, 0.0, -1.0, 0.5]))

    def forward(self, x):
        return self.logits.expand(x.shape[0], -1) + 0.0 * x.flatten(1).sum(1, keepdim=True)


def indifferent() -> nn.Module:
    """Logits that ignore the image: every I-GOS mask stays at M = 1."""
    return _Indifferent()
