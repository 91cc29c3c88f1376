"""How far the regulariser alone carries a mask past the evidence (issue 21, item 7: where Mask's known-answer leak
comes from).

The known-answer model sees only the top-left quadrant, so the score's gradient is exactly zero on every cell
whose footprint misses it: there only ``λ1 · mean|1 − M| + λ2 · TV_β(M)`` acts. This script fixes the cells that
reach the quadrant at 0 (deleted, as a correct map deletes them), minimises the regulariser alone over the other
cells in ``[0, 1]`` (projected Adam, long enough to converge), and reports the share of the saliency ``1 − M`` that
the minimiser puts on cells out of sight (:func:`igos.known_answer.out_of_sight_share`). A share above 0 is the
objective's own optimum, not an optimiser's artefact: any method minimising that objective to convergence leaks
that much. Beside it: the same from ``M = 1`` with the method's own optimiser and number of steps.

    python benchmarks/regulariser_reach.py
"""

from __future__ import annotations

import argparse

import torch

from igos.known_answer import cell_reach, out_of_sight_share, region_mask
from igos.perturb import regulariser

#: name -> (side, λ1, λ2, β): Mask's defaults (its class) and I-GOS's at 28×28 and 7×7 (β = 2, λ from
#: igos.methods.defaults), and the same with β = 1, the plain total variation, whose cost does not depend on how a
#: step from 0 to 1 is spread (at these weights it floods the free cells with one level instead)
SETTINGS = {"mask 28": (28, 0.01, 0.2, 3.0), "igos 28": (28, 1.0, 20.0, 2.0), "igos 7": (7, 1.0, 1.0, 2.0),
            "mask 28, β = 1": (28, 0.01, 0.2, 1.0), "igos 28, β = 1": (28, 1.0, 20.0, 1.0)}


def minimise(side: int, l1: float, tv: float, beta: float, fixed: torch.Tensor, steps: int, lr: float) -> torch.Tensor:
    """The regulariser's minimiser over the free cells (``fixed``: the cells held at 0), from ``M = 1``, by projected
    Adam."""
    m = torch.ones(1, 1, side, side, dtype=torch.double, requires_grad=True)
    opt = torch.optim.Adam([m], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        regulariser(m, l1, tv, beta).sum().backward()
        opt.step()
        with torch.no_grad():
            m.clamp_(0, 1)
            m[0, 0][fixed] = 0.0
    return m.detach()[0, 0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=224, help="the model's input side")
    ap.add_argument("--steps", type=int, default=20000, help="steps of the converged run")
    args = ap.parse_args()
    region = region_mask("quadrant", (args.size, args.size))
    print(f"quadrant of a {args.size}×{args.size} input; cells reaching it fixed at 0 (deleted), the rest minimise "
          "the regulariser alone")
    print("| setting | λ1, λ2, β | out of sight, converged | its last free row of cells (from the border out) | "
          "out of sight, 500 Adam steps at lr 0.1 (Mask's run) |\n|---|---|---|---|---|")
    for name, (side, l1, tv, beta) in SETTINGS.items():
        fixed = cell_reach((side, side), region) > 0
        done = minimise(side, l1, tv, beta, fixed, args.steps, lr=0.01)
        short = minimise(side, l1, tv, beta, fixed, 500, lr=0.1)
        row = done[0, fixed[0].sum():]  # the first row, from the first free cell outwards
        print(f"| {name} | {l1}, {tv}, {beta:g} | {100 * out_of_sight_share(1 - done, region):.1f} % | "
              + " ".join(f"{float(v):.2f}" for v in row[:8])
              + f" | {100 * out_of_sight_share(1 - short, region):.1f} % |")


if __name__ == "__main__":
    main()
