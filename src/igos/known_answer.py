"""Known answers: a model that sees only part of the photo has a correct map, all of it there.

:class:`SeesOnly` wraps any model so that it sees only a region of its input: the rest is replaced, before the
network, by a constant image (the photo's blur, or grey). The output's gradient outside the region is then
exactly zero and no removal outside it changes the score, so every unit of a map's positive mass outside the
region is wrong. :func:`known_answer` explains each photo through such a wrapper and reports the share of the
map's positive mass inside the region.

Regions: ``quadrant`` (the top-left quarter of the input) or ``box`` (a box per photo, seeded: sides between a
third and a half of the input's, anywhere inside it). The share is measured on the map's own cells: each cell's
positive value weighted by the fraction of its area inside the region (exact for regions on cell borders, as the
quadrant is at every side that divides the input's half), over the map's total positive value. A map with no
positive value has no share (``None``), counted apart.

A mask cell reaches further than its own area: the optimisers upsample masks bilinearly, so a cell just outside
the region still changes the pixels along its border. :func:`out_of_sight_share` counts only the mass on cells
whose upsampled footprint does not touch the region at all: mass no deletion could justify.
:func:`reach_reference` is the other end of the scale: the share of a map that removes the whole region as far as
the cells can, the ring just outside its border included (0.871 for the quadrant at 28×28).

The check's verdict (``igos report``) therefore reads the share *in reach*, 1 − the share out of sight: the
correct map of a model whose evidence fills the region scores 1 there and only :func:`reach_reference` on the
region's own cells, so a bar on the latter would fail the right answer. Both shares are reported.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .methods import get_method
from .perturb import blurred_baseline, upsample

__all__ = ["SeesOnly", "region_mask", "inside_share", "region_reference", "out_of_sight_share", "cell_reach",
           "reach_reference", "known_answer", "KnownAnswerResult", "REGIONS", "FILLS"]

REGIONS = ("quadrant", "box")
FILLS = ("blur", "grey")


class SeesOnly(nn.Module):
    """``model`` seeing only ``region`` (``[H, W]``, 1 inside) of its input: ``x ⊙ R + fill ⊙ (1 − R)`` goes to
    the network, ``fill`` a constant ``[3, H, W]`` image (it does not depend on the input)."""

    def __init__(self, model: nn.Module, region: Tensor, fill: Tensor):
        super().__init__()
        self.net = model
        self.register_buffer("region", region.view(1, 1, *region.shape[-2:]).to(fill.dtype))
        self.register_buffer("fill", fill.view(1, *fill.shape[-3:]))

    def forward(self, x: Tensor) -> Any:
        return self.net(x * self.region + self.fill * (1 - self.region))


def region_mask(kind: str, size: tuple[int, int], seed: int = 0, index: int = 0) -> Tensor:
    """The region ``[H, W]`` (1 inside): ``quadrant``, or photo ``index``'s seeded ``box``."""
    h, w = size
    mask = torch.zeros(h, w)
    if kind == "quadrant":
        mask[: h // 2, : w // 2] = 1
    elif kind == "box":
        g = torch.Generator().manual_seed(int(seed) * 100_003 + int(index))
        bh, bw = (int(torch.randint(s // 3, s // 2 + 1, (1,), generator=g)) for s in (h, w))
        top = int(torch.randint(0, h - bh + 1, (1,), generator=g))
        left = int(torch.randint(0, w - bw + 1, (1,), generator=g))
        mask[top : top + bh, left : left + bw] = 1
    else:
        raise ValueError(f"unknown region {kind!r}; choose one of: {', '.join(REGIONS)}")
    return mask


def _coverage(region: Tensor, cells: tuple[int, int]) -> Tensor:
    """``[h, w]``: the fraction of each cell's area inside ``region`` (``[H, W]``)."""
    return F.adaptive_avg_pool2d(region.double().view(1, 1, *region.shape[-2:]), tuple(cells))[0, 0]


def inside_share(saliency: Tensor, region: Tensor) -> float | None:
    """The share of ``saliency``'s (``[h, w]``) positive mass inside ``region`` (``[H, W]``), on the map's cells
    (each weighted by its area inside the region); ``None`` for a map with no positive value."""
    positive = saliency.detach().double().clamp_min(0)
    total = float(positive.sum())
    if total <= 0:
        return None
    inside = _coverage(region, tuple(saliency.shape[-2:]))
    return float((positive * inside.to(positive.device)).sum()) / total


def region_reference(region: Tensor, cells: tuple[int, int]) -> float:
    """The share a map on ``cells`` scores when it is the region itself pooled to them (each cell's value the
    fraction of its area inside): what a map exact to the pixel scores once averaged into cells. 1 when the
    region's border runs along cell borders (the quadrant at every side dividing half the input); below 1 where
    the border cuts cells, as a seeded box's does, since a cut cell's mass counts only by its area inside."""
    share = inside_share(_coverage(region, cells), region)
    if share is None:
        raise ValueError("the region is empty: it has no pixel inside")
    return share


def cell_reach(cells: tuple[int, int], region: Tensor) -> Tensor:
    """``[h, w]``: each cell's upsampling weight (:func:`igos.perturb.upsample` to ``region``'s size) summed over the
    region's pixels; 0 for a cell whose footprint misses the region."""
    leaf = torch.zeros(1, 1, *cells, dtype=torch.double, requires_grad=True)
    (upsample(leaf, tuple(region.shape[-2:]))[0, 0] * region.double().cpu()).sum().backward()
    return leaf.grad[0, 0]


def out_of_sight_share(saliency: Tensor, region: Tensor) -> float | None:
    """The share of ``saliency``'s (``[h, w]``) positive mass on cells whose footprint under the optimisers'
    upsampling (:func:`igos.perturb.upsample` to ``region``'s size) has no pixel inside ``region``: cells whose
    removal cannot change what a model seeing only the region sees. ``None`` for a map with no positive value."""
    positive = saliency.detach().double().clamp_min(0).cpu()
    total = float(positive.sum())
    if total <= 0:
        return None
    return float(positive[cell_reach(tuple(positive.shape[-2:]), region) <= 0].sum()) / total


def reach_reference(region: Tensor, cells: tuple[int, int]) -> float:
    """The share scored by the map that removes all the model sees as far as a mask on ``cells`` can: 1 on every
    cell whose upsampled footprint reaches into ``region``, 0 elsewhere. A bilinear mask cannot delete the pixels
    along the region's border without the ring of cells just outside it, so such a map, correct for a model whose
    evidence fills the region, scores this and not 1 (196/225 = 0.871 for the quadrant at 28×28 on a 224 input);
    a map whose evidence lies away from the border scores more, up to 1."""
    reach = (cell_reach(cells, region) > 0).double()
    share = inside_share(reach, region)
    if share is None:
        raise ValueError("the region is empty: it has no pixel inside")
    return share


@dataclass
class KnownAnswerResult:
    """Per photo: the share of positive mass inside the region (``None``: no positive mass)."""

    method: str
    resolution: Any
    region: str
    fill: str
    names: list[str]
    shares: list[float | None] = field(default_factory=list)
    maps: list[Tensor] = field(default_factory=list)
    #: per photo, :func:`region_reference` on the map's cells (the share of the region itself, pooled to them)
    references: list[float] = field(default_factory=list)
    #: per photo, :func:`out_of_sight_share` (``None``: no positive mass)
    out_of_sight: list[float | None] = field(default_factory=list)
    #: per photo, :func:`reach_reference` on the map's cells (the whole region, as far as the mask's cells reach)
    reach_references: list[float] = field(default_factory=list)

    def in_reach(self) -> list[float | None]:
        """Per photo: the share of positive mass on cells that reach the region (1 − :attr:`out_of_sight`), the
        share the check judges (``None``: no positive mass)."""
        return [None if v is None else 1.0 - v for v in self.out_of_sight]

    def summary(self) -> dict[str, Any]:
        scored = [s for s in self.shares if s is not None]
        reach = [v for v in self.in_reach() if v is not None] if len(self.out_of_sight) == len(self.shares) else []
        return {"method": self.method, "resolution": self.resolution, "region": self.region, "fill": self.fill,
                "mean_share": sum(scored) / len(scored) if scored else None,
                "min_share": min(scored) if scored else None, "no_positive_mass": len(self.shares) - len(scored),
                "per_photo": dict(zip(self.names, self.shares)),
                "reference": sum(self.references) / len(self.references) if self.references else None,
                "reach_reference": (sum(self.reach_references) / len(self.reach_references)
                                    if self.reach_references else None),
                "mean_out_of_sight": (sum(v for v in self.out_of_sight if v is not None) / len(scored)
                                      if scored and len(self.out_of_sight) == len(self.shares) else None),
                "mean_in_reach": sum(reach) / len(reach) if reach else None,
                "min_in_reach": min(reach) if reach else None}


def known_answer(model: nn.Module, images: Tensor, method: str, *, resolution: Any = None, region: str = "quadrant",
                 fill: str = "blur", seed: int = 0, names: Sequence[str] | None = None,
                 progress: Callable[[str], None] | None = None, **options: Any) -> KnownAnswerResult:
    """Explain each photo of ``images`` (``[B, 3, H, W]`` in ``[0, 1]``) with ``method`` through
    :class:`SeesOnly` (its ``region``, the rest ``fill``: the photo's blur, the method's baseline, or grey 0.5),
    for the wrapped model's top class; returns the share of each map's positive mass inside the region.
    ``options``: the method's."""
    if fill not in FILLS:
        raise ValueError(f"unknown fill {fill!r}; choose one of: {', '.join(FILLS)}")
    spec = get_method(method)
    size = tuple(images.shape[-2:])
    names = list(names or [str(i) for i in range(len(images))])
    result = KnownAnswerResult(method, resolution, region, fill, names)
    for i in range(images.shape[0]):
        x = images[i : i + 1]
        r = region_mask(region, size, seed, i).to(x.device, x.dtype)
        f = blurred_baseline(x)[0] if fill == "blur" else torch.full_like(x[0], 0.5)
        wrapper = SeesOnly(model, r, f).eval()
        sal = spec(wrapper, x, None, resolution=resolution, seed=seed, **options).saliency[0].detach().cpu()
        result.maps.append(sal)
        result.shares.append(inside_share(sal, r.cpu()))
        result.references.append(region_reference(r.cpu(), tuple(sal.shape[-2:])))
        result.out_of_sight.append(out_of_sight_share(sal, r.cpu()))
        result.reach_references.append(reach_reference(r.cpu(), tuple(sal.shape[-2:])))
        if progress:
            share, far = result.shares[-1], result.out_of_sight[-1]
            progress(f"{names[i]}: " + ("no positive mass" if share is None or far is None else
                                        f"{100 * (1 - far):.1f} % in reach, {100 * share:.1f} % on the region's cells"))
    shapes = {tuple(m.shape[-2:]) for m in result.maps}
    if len(shapes) == 1:  # the side the maps came out at (a method with its own side ignores the one asked for)
        h, w = shapes.pop()
        result.resolution = h if h == w else f"{h}x{w}"
    return result
