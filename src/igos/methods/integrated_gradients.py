"""Integrated Gradients (Sundararajan, Taly, Yan 2017), via Captum, from the blurred baseline.

``IG_i = (x_i − x0_i) · ∫_0^1 ∂p_c(x0 + α(x − x0))/∂x_i dα`` for the target's score (a class's softmax
probability ``p_c`` by default, :mod:`igos.targets`), with ``steps`` integration points (20 by default, as the
I-GOS paper).
Completeness: the attributions sum to ``p_c(x) − p_c(x0)`` up to the quadrature error. The map
sums the attributions over colour channels: ``[B, H, W]`` at input resolution (``resolution``
is ignored: IG has no honest coarser form).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from ..errors import MissingDependencyError
from .common import Attribution, class_probability
from .options import Checks, MethodOptions
from .registry import MethodSpec

__all__ = ["integrated_gradients", "IGOptions", "TargetScore", "SPEC"]

#: Captum's integration rules
INTEGRATIONS = ("gausslegendre", "riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle")


@dataclass(frozen=True)
class IGOptions(MethodOptions):
    """Integrated Gradients' options.

    Attributes:
        steps: integration points (20, as the I-GOS paper).
        integration: Captum's rule: ``gausslegendre``, ``riemann_trapezoid``, ``riemann_left``,
            ``riemann_right`` or ``riemann_middle``.
        batch_size: path points per model call.
    """

    steps: int = 20
    integration: str = "gausslegendre"

    def check(self, checks: Checks) -> None:
        super().check(checks)
        checks.at_least(1, "steps")
        checks.one_of("integration", INTEGRATIONS)


class TargetScore(nn.Module):
    """The bound target's score of each row (``rows``: its image): Captum attributes it (a class's probability
    by default), repeating ``rows`` with the path's points as it repeats the inputs."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: Tensor, rows: Tensor) -> Tensor:
        return class_probability(self.model, x, rows)


def _integrated_gradients(model: nn.Module, images: Tensor, targets: Tensor, *, baseline: Tensor, size: None,
                          seed: int, options: IGOptions) -> Attribution:
    try:
        from captum.attr import IntegratedGradients
    except ImportError as exc:
        raise MissingDependencyError("the ig method uses Captum: pip install 'igos[baselines]'") from exc
    ig = IntegratedGradients(TargetScore(model))
    attr, delta = ig.attribute(images, baselines=baseline, additional_forward_args=(targets,), n_steps=options.steps,
                               method=options.integration, internal_batch_size=options.batch_size,
                               return_convergence_delta=True)
    trace = [{"delta": float(d), "attribution_sum": float(a), "path_delta": float(a - d)}
             for d, a in zip(delta, attr.flatten(1).sum(1))]
    return Attribution(attr.sum(dim=1).detach(), trace=trace)


SPEC = MethodSpec("ig", _integrated_gradients, "Integrated Gradients", "input", IGOptions,
                  reference="Integrated Gradients (Sundararajan et al. 2017), via Captum", cost="0 / 20",
                  baseline=True, requires=(("captum", "pip install 'igos[baselines]'"),))


def integrated_gradients(model: nn.Module, images: Tensor, target: int | Sequence[int] | Tensor | None = None, *,
                         baseline: Tensor | None = None, **options: Any) -> Attribution:
    """Integrated Gradients saliency ``[B, H, W]`` (signed; higher = more evidence for the class); ``options``:
    :class:`IGOptions`' fields. Each image's trace records completeness: ``attribution_sum`` (the attributions'
    sum), ``path_delta`` (``p_c(x) − p_c(x0)``) and Captum's ``delta``, their difference."""
    return SPEC(model, images, target, baseline=baseline, **options)
