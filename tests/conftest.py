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


def squares(weight: float) -> tuple[LinearScore, torch.Tensor]:
    """Two 32×32 images, each a bright 10×10 square, and a LinearScore model that weighs exactly the
    squares' pixels by ``weight`` (class 0's probability rises with what is left of the squares)."""
    x = torch.zeros(2, 3, 32, 32)
    x[0, :, 4:14, 4:14] = 1
    x[1, :, 18:28, 16:26] = 1
    w = torch.zeros(3, 32, 32)
    w[:, 4:14, 4:14] = w[:, 18:28, 16:26] = weight
    return LinearScore(w), x


def armijo_checked(traces: list[dict], armijo: float = 1e-4) -> int:
    """Asserts the Armijo condition ``F_after ≤ F_before − β · step · ‖g‖²`` for every step the line search
    accepted (a refused search takes ``min_step`` and owes nothing); returns how many steps were checked."""
    checked = 0
    for trace in traces:
        for (before, after, step, gnorm2), accepted in zip(trace["armijo"], trace["accepted"], strict=True):
            if accepted:
                assert after <= before - armijo * step * gnorm2 + 1e-7, (before, after, step, gnorm2)
                checked += 1
    return checked


@pytest.fixture
def image_dir(tmp_path):
    """Six 40×40 noise photos and one file that is not an image."""
    import numpy as np
    from PIL import Image

    d = tmp_path / "images"
    d.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray((rng.random((40, 40, 3)) * 255).astype(np.uint8)).save(d / f"img{i}.png")
    (d / "broken.png").write_text("not an image")
    return d


@pytest.fixture
def photo(tmp_path):
    """A 60×30 (wide) noise photo file."""
    import numpy as np
    from PIL import Image

    path = tmp_path / "wide.png"
    Image.fromarray((np.random.default_rng(0).random((30, 60, 3)) * 255).astype(np.uint8)).save(path)
    return path


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
