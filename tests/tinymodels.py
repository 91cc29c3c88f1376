"""Factories for ``load_model("tinymodels:...")`` in tests (subprocesses import them by name)."""

import torch
from torch import nn


def _seeded(net: nn.Module) -> nn.Module:
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return net


def tiny_classifier() -> nn.Module:
    """A cheap deterministic 4-class CNN that accepts any input size."""
    return _seeded(nn.Sequential(nn.AvgPool2d(8), nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                                 nn.Flatten(), nn.Linear(24, 4)))


def sigmoid_classifier() -> nn.Module:
    """A 3-class CNN with a sigmoid, which Excitation Backprop has no rule for: EBP fails on every image."""
    return _seeded(nn.Sequential(nn.AvgPool2d(8), nn.Conv2d(3, 4, 3, padding=1), nn.Sigmoid(),
                                 nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)))


class _Indifferent(nn.Module):
    def __init__(self):
        super().__init__()
        self.logits = nn.Parameter(torch.tensor([2.0, 0.0, -1.0, 0.5]))

    def forward(self, x):
        return self.logits.expand(x.shape[0], -1) + 0.0 * x.flatten(1).sum(1, keepdim=True)


def indifferent() -> nn.Module:
    """Logits that ignore the image: every I-GOS mask stays at M = 1."""
    return _Indifferent()


class _DiesOnce(nn.Module):
    """The tiny classifier, except that the first process to run a forward pass on a batch of more than
    one image after ``IGOS_TEST_DIE_MARKER`` is set kills itself (SIGKILL), once: a worker dying mid-unit."""

    def __init__(self):
        super().__init__()
        self.net = tiny_classifier()

    def forward(self, x):
        import os
        import signal

        marker = os.environ.get("IGOS_TEST_DIE_MARKER")
        if marker and x.shape[0] > 1 and not os.path.exists(marker):
            open(marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return self.net(x)


def dies_once() -> nn.Module:
    return _DiesOnce()


class _Slow(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = tiny_classifier()

    def forward(self, x):
        import time

        time.sleep(0.01)
        return self.net(x)


def slow_classifier() -> nn.Module:
    """The tiny classifier at 10 ms per model call: a run long enough to interrupt."""
    return _Slow()


def sized_classifier(classes: int = 4, width: int = 6) -> nn.Module:
    """A factory with keyword arguments (``--model-arg classes=3 width=8``)."""
    return _seeded(nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                                 nn.Linear(4 * width, classes)))


class _Wrapped(nn.Module):
    def __init__(self, kind: str):
        super().__init__()
        self.net, self.kind = tiny_classifier(), kind

    def forward(self, x):
        logits = self.net(x)
        if self.kind == "tuple":
            return logits, logits.detach() * 0
        if self.kind == "dict":
            return {"logits": logits, "aux": logits.sum()}
        return {"features": logits}  # no logits to be found


def returns_tuple() -> nn.Module:
    return _Wrapped("tuple")


def returns_dict() -> nn.Module:
    return _Wrapped("dict")


def returns_no_logits() -> nn.Module:
    return _Wrapped("none")
