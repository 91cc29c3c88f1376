"""Integrated Gradients (Sundararajan, Taly, Yan 2017), via Captum, from the blurred baseline.

``IG_i = (x_i − x0_i) · ∫_0^1 ∂p_c(x0 + α(x − x0))/∂x_i dα`` for the target's softmax
probability ``p_c``, with ``steps`` integration points (20 by default, as the I-GOS paper).
Completeness: the attributions sum to ``p_c(x) − p_c(x0)`` up to the quadrature error. The map
sums the attributions over colour channels: ``[B, H, W]`` at input resolution (``resolution``
is ignored: IG has no honest coarser form).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from ..errors import MissingDependencyError
from ..models import frozen
from ..perturb import blurred_baseline
from .common import Attribution, ImageCounter, check_images, resolve_targets

__all__ = ["integrated_gradients", "Probability"]


class Probability(nn.Module):
    """``model`` followed by a softmax: Captum then attributes the class probability."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x).softmax(dim=1)


def integrated_gradients(
    model: nn.Module,
    images: Tensor,
    target: int | Sequence[int] | Tensor | None = None,
    *,
    baseline: Tensor | None = None,
    steps: int = 20,
    integration: str = "gausslegendre",
    batch_size: int = 16,
) -> Attribution:
    """Integrated Gradients saliency ``[B, H, W]`` (signed; higher = more evidence for the class).

    Args:
        steps: integration points. integration: Captum's method (``gausslegendre``,
            ``riemann_trapezoid``, ``riemann_left``, …).

    The trace of each image records completeness: ``attribution_sum`` (the attributions' sum),
    ``path_delta`` (``p_c(x) − p_c(x0)``) and Captum's ``delta``, their difference.
    """
    try:
        from captum.attr import IntegratedGradients
    except ImportError as exc:
        raise MissingDependencyError("the ig method uses Captum: pip install 'igos[baselines]'") from exc
    images = check_images(images)
    if baseline is None:
        baseline = blurred_baseline(images)
    counter = ImageCounter()
    with frozen(model), counter.watch(model):
        targets = resolve_targets(model, images, target, batch_size)
        ig = IntegratedGradients(Probability(model))
        attr, delta = ig.attribute(images, baselines=baseline, target=targets, n_steps=steps, method=integration,
                                   internal_batch_size=batch_size, return_convergence_delta=True)
    trace = [{"delta": float(d), "attribution_sum": float(a), "path_delta": float(a - d)}
             for d, a in zip(delta, attr.flatten(1).sum(1))]
    return Attribution(attr.sum(dim=1).detach(), trace=trace, target=targets,
                       forward_images=counter.forward_images, backward_images=counter.backward_images)
