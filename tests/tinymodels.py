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


def _energy(x: torch.Tensor) -> torch.Tensor:
    """Local high-frequency energy ``[N, 1, H, W]``: the squared Laplacian of the grey image (edges replicated, so
    a flat image has none)."""
    grey = torch.nn.functional.pad(x.mean(1, keepdim=True), (1, 1, 1, 1), mode="replicate")
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], device=x.device).view(1, 1, 3, 3)
    return torch.nn.functional.conv2d(grey, kernel) ** 2


class _Segmenter(nn.Module):
    """Two classes per output pixel at a quarter of the input's side: class 1's logit is the high-frequency energy
    of the pixel's 4×4 patch, computed from that patch alone (so a region's score depends only on its pixels)."""

    def __init__(self, scale: float = 20.0, shift: float = 2.0, full: bool = False):
        super().__init__()
        self.scale, self.shift, self.full = scale, shift, full

    def forward(self, x):
        n, c, h, w = x.shape  # each 4×4 patch on its own: [N·h/4·w/4, C, 4, 4]
        patches = x.unfold(2, 4, 4).unfold(3, 4, 4).permute(0, 2, 3, 1, 4, 5).reshape(-1, c, 4, 4)
        e = _energy(patches).mean((1, 2, 3)).view(n, 1, h // 4, w // 4) * self.scale - self.shift
        if self.full:  # at the input's size, as torchvision's segmenters return it
            e = e.repeat_interleave(4, 2).repeat_interleave(4, 3)
        return {"out": torch.cat([torch.zeros_like(e), e], dim=1)}


def tiny_segmenter(full: bool = False) -> nn.Module:
    """A torchvision-style segmenter (``{"out": [N, 2, H/4, W/4]}``, or at the input's size with ``full``) whose
    outputs depend on known pixels only."""
    return _Segmenter(full=full)


class _Detector(nn.Module):
    """A torchvision-style detector (a list of dicts with boxes, labels, scores per image) with three fixed
    boxes: label 1 over the top-left quadrant and label 2 over the bottom-right one, each scored by the
    high-frequency energy inside its box only (``e / (e + c)``); label 3 over the whole photo with a constant score.
    A detection under ``threshold`` is dropped, as a detector's score threshold does."""

    def __init__(self, c: float = 0.02, threshold: float = 0.05):
        super().__init__()
        self.c, self.threshold = c, threshold

    def forward(self, x):
        n, _, h, w = x.shape
        top_left = _energy(x[..., : h // 2, : w // 2]).mean((1, 2, 3))  # each from its box's pixels only
        bottom_right = _energy(x[..., h // 2 :, w // 2 :]).mean((1, 2, 3))
        out = []
        for i in range(n):
            boxes = torch.tensor([[0.0, 0.0, w / 2, h / 2], [w / 2, h / 2, w, h], [0.0, 0.0, w, h]], device=x.device)
            scores = torch.stack([top_left[i] / (top_left[i] + self.c), bottom_right[i] / (bottom_right[i] + self.c),
                                  torch.tensor(0.3, device=x.device)])
            keep = scores > self.threshold
            out.append({"boxes": boxes[keep], "labels": torch.tensor([1, 2, 3], device=x.device)[keep],
                        "scores": scores[keep]})
        return out


def tiny_detector() -> nn.Module:
    return _Detector()


class _Regressor(nn.Module):
    """One output: the top-left quadrant's high-frequency energy (a regression model with a known support)."""

    def forward(self, x):
        h, w = x.shape[-2:]
        return _energy(x[..., : h // 2, : w // 2]).mean((1, 2, 3)) * 10


def tiny_regressor() -> nn.Module:
    return _Regressor()


class _MultiLabel(nn.Module):
    """Three independent sigmoid logits: label k's logit is the energy of the photo's k-th vertical third."""

    def forward(self, x):
        w = x.shape[-1]
        thirds = [_energy(x[..., k * w // 3 : (k + 1) * w // 3]).mean((1, 2, 3)) for k in range(3)]
        return torch.stack(thirds, 1) * 20 - 2


def tiny_multilabel() -> nn.Module:
    return _MultiLabel()
