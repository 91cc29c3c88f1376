"""Records tests/data/reference64.pt: every registered method on the tiny float64 net, one thread,
deterministic algorithms, plus the paper-setting descent cases. Recorded before the options schema (issue 20);
since then one count changed on purpose: a stall retry no longer resolves its targets again (one forward image
fewer, 194 → 193, the maps equal). The controls' cases were added after, with their own code. Issue 23 added an
accelerated search (``accelerated=True``) and left the line search the default: the line-search cases ``igospp_line*``
(``accelerated=False``) equal ``igospp_default*``, and ``igospp_accelerated7`` is new; ``igospp_nomomentum7`` (the
fixed step without momentum, capped at 1/L) came after it.

    python tests/data/record_reference64.py [CASE …]     # every case, or only these
"""

from pathlib import Path

import torch

CASES = {
    # (method, options): the defaults at one resolution, and the paper-setting descent cases
    "igos_default7": ("igos", dict(resolution=7)),
    "igos_default28": ("igos", dict(resolution=28, iterations=4)),
    "igos_paper_short5": ("igos", dict(resolution=5, iterations=6, steps=5, batch_size=8, seed=3, start=1.0,
                                       tie_break=0.0)),
    "igos_nosearchpts": ("igos", dict(resolution=7, iterations=5, steps=4, search_points=0)),
    "igos_searchnoise": ("igos", dict(resolution=7, iterations=5, steps=4, search_noise=True)),
    "igos_fixed": ("igos", dict(resolution=7, iterations=4, steps=4, fixed_step=1.0)),
    "igos_nonoise_noearly": ("igos", dict(resolution=(4, 6), iterations=5, steps=4, noise=0.0, early_stop=None)),
    "igos_adaptive_logodds": ("igos", dict(resolution=7, iterations=3, steps=4, grid="adaptive",
                                           score="log-odds", normalise=True, direction="ig")),
    "igospp_line7": ("igospp", dict(resolution=7, iterations=4, steps=4, accelerated=False)),
    "igospp_line28": ("igospp", dict(resolution=28, iterations=3, accelerated=False)),
    "igospp_default7": ("igospp", dict(resolution=7, iterations=4, steps=4)),
    "igospp_default28": ("igospp", dict(resolution=28, iterations=3)),
    "igospp_accelerated7": ("igospp", dict(resolution=7, iterations=4, accelerated=True)),
    "igospp_nomomentum7": ("igospp", dict(resolution=7, iterations=4, accelerated=True, momentum=False)),
    "igospp_lean112": ("igospp", dict(resolution=16, lean=True, iterations=3)),
    "igospp_paper5": ("igospp", dict(resolution=5, iterations=3, steps=3, seed=2, l1=10.0, tv=20.0, start=1.0,
                                     lean=False, tie_break=0.0, early_stop=None)),
    "igos_stall_retries": ("igos", dict(resolution=7, iterations=6, steps=5, batch_size=8, stall_retries=2,
                                        start=1.0, tie_break=0.0, target=0)),
    "mask7": ("mask", dict(resolution=7, iterations=20)),
    "ig": ("ig", dict(steps=8)),
    "gradcam": ("gradcam", dict(layer="features.2")),
    "rise": ("rise", dict(masks=64, grid=4, seed=1)),
    "gradient": ("gradient", {}),
    "ebp8": ("ebp", dict(resolution=8)),
    "random7": ("random", dict(resolution=7, seed=4)),
    "center7": ("center", dict(resolution=7)),
    "edges7": ("edges", dict(resolution=7)),
}


def run_case(name: str):
    import sys

    sys.path.insert(0, str(Path(__file__).parent.parent))
    from conftest import TinyNet

    from igos.methods import get_method

    method, kw = CASES[name]
    if name == "igos_stall_retries":  # a weak signal: at λ = (1, 1) no step pays, at 0.3 × λ it does
        from conftest import squares

        net, images = squares(0.003)
        net, images = net.double(), images.double()
    else:
        net = TinyNet().double().eval()
        images = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(1)).double()
    return get_method(method)(net, images, **kw)


def main(only: list[str] | None = None) -> None:
    """Records every case, or with names on the command line only those (the others keep their snapshot)."""
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    path = Path(__file__).parent / "reference64.pt"
    out = torch.load(path) if only and path.exists() else {}
    for name in only or CASES:
        a = run_case(name)
        out[name] = {"saliency": a.saliency, "forward": a.forward_images, "backward": a.backward_images,
                     "objective": [t.get("objective") for t in a.trace]}
    torch.save(out, path)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:] or None)
