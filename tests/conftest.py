"""Tiny hand-built models and images shared by the tests."""

from __future__ import annotations

import pytest
import torch
from torch import nn


class TinyNet(nn.Module):
    """A small convolutional classifier (5 classes) with fixed random weights."""

    def __init__(self, seed: int = 0, classes: int = 5):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.features = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 8, 3, padding=1))
        self.act = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(32, classes)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)

    def forward(self, x):
        return self.fc(self.pool(self.act(self.features(x))).flatten(1))


class LinearScore(nn.Module):
    """Two classes; logit 0 = Σ w ⊙ x, logit 1 = 0: p_0 = sigmoid(Σ w ⊙ x), a known function of the pixels."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.register_buffer("weight", weight)

    def forward(self, x):
        s = (x * self.weight).flatten(1).sum(1)
        return torch.stack([s, torch.zeros_like(s)], dim=1)


@pytest.fixture
def tiny_net():
    return TinyNet().eval()


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(1)
    return torch.rand(3, 3, 32, 32, generator=g)


@pytest.fixture(scope="session")
def lite0():
    import igos

    return igos.load_model("efficientnet-lite0")


@pytest.fixture(scope="session")
def chelsea_path():
    from pathlib import Path

    import skimage

    return Path(skimage.__file__).parent / "data" / "chelsea.png"
