"""Where the time of an explanation goes (issue 23, item 1): per method and resolution, the exclusive share of wall
time in the network's forward passes (with and without gradients), its backward passes, the line search's own
work, upsampling and compositing, the regularisers, and the rest (Python, bookkeeping); images through the model
per explanation; and the floor: those images times the measured cost of one image (forward only, and forward +
backward, at the method's batch size), so that every later change is judged against it.

    python benchmarks/profile_methods.py --images ../shared/data/imagenet-dev --limit 2
    python benchmarks/profile_methods.py --methods igos igospp --resolutions 28 7
    python benchmarks/profile_methods.py --methods igos auto --resolutions 28   # auto: the recommended method

Time is attributed to the innermost instrumented region (a forward pass inside the line search counts as a
forward pass). Instrumentation wraps functions by name; its own cost is included in "rest" (about 2 µs a call).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import pkgutil
import time
from collections import defaultdict
from collections.abc import Callable, Iterator

import torch

import igos
import igos.methods
from igos.images import find_images
from igos.methods.recommended import recommended, recommended_method

CATEGORIES = ("forward+grad", "forward", "backward", "line search", "upsample/composite", "regularisers", "rest")
#: function names wrapped in igos's modules, by category
WRAPPED = {
    "line search": ("line_search", "_fixed_step"),
    "upsample/composite": ("upsample", "composite", "upsample_adjoint", "cell_pool", "_path_points", "_points"),
    "regularisers": ("regulariser", "regulariser_gradient", "tv_loss", "l1_loss", "btv_loss", "edge_weights"),
}


class Tracer:
    """Exclusive wall time per category: a stack of open regions; time goes to the innermost."""

    def __init__(self, device: torch.device):
        self.device = device
        self.seconds: dict[str, float] = defaultdict(float)
        self.stack: list[str] = []
        self.mark = 0.0
        self.inclusive: dict[str, float] = defaultdict(float)  # a region with everything inside it
        self.opened: list[float] = []

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def enter(self, category: str) -> None:
        self._sync()
        now = time.perf_counter()
        if self.stack:
            self.seconds[self.stack[-1]] += now - self.mark
        self.stack.append(category)
        self.opened.append(now)
        self.mark = now

    def leave(self) -> None:
        self._sync()
        now = time.perf_counter()
        category = self.stack.pop()
        self.seconds[category] += now - self.mark
        started = self.opened.pop()
        if category not in self.stack:  # outermost of its kind
            self.inclusive[category] += now - started
        self.mark = now

    def wrap(self, category: str, fn: Callable) -> Callable:
        def wrapped(*args, **kwargs):
            self.enter(category)
            try:
                result = fn(*args, **kwargs)
                if category == "upsample/composite" and hasattr(result, "__next__"):  # a generator: time each item
                    return self._generator(result)
                return result
            finally:
                self.leave()

        return wrapped

    def _generator(self, gen: Iterator) -> Iterator:
        while True:
            self.enter("upsample/composite")
            try:
                item = next(gen)
            except StopIteration:
                return
            finally:
                self.leave()
            yield item


@contextlib.contextmanager
def traced(model: torch.nn.Module, tracer: Tracer) -> Iterator[None]:
    patched: list[tuple[object, str, object]] = []

    def patch(owner: object, name: str, new: object) -> None:
        patched.append((owner, name, getattr(owner, name)))
        setattr(owner, name, new)

    modules = [importlib.import_module("igos.perturb"), importlib.import_module("igos.metrics")]
    modules += [importlib.import_module(f"igos.methods.{m.name}") for m in pkgutil.iter_modules(igos.methods.__path__)]
    for category, names in WRAPPED.items():
        for module in modules:
            for name in names:
                if callable(getattr(module, name, None)):
                    patch(module, name, tracer.wrap(category, getattr(module, name)))
    patch(torch.autograd, "grad", tracer.wrap("backward", torch.autograd.grad))
    patch(torch.Tensor, "backward", tracer.wrap("backward", torch.Tensor.backward))  # Mask's optimiser

    def pre(module, args):
        tracer.enter("forward+grad" if torch.is_grad_enabled() else "forward")

    def post(module, args, output):
        tracer.leave()

    handles = [model.register_forward_pre_hook(pre), model.register_forward_hook(post)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()
        for owner, name, old in reversed(patched):
            setattr(owner, name, old)


def image_costs(model: torch.nn.Module, x: torch.Tensor, batch: int, repeats: int = 5) -> tuple[float, float]:
    """Seconds per image of a forward pass (no gradients) and of a forward + backward pass, ``batch`` at a time."""
    xb = x[:1].expand(batch, -1, -1, -1).contiguous()
    with torch.no_grad():
        model(xb)
        t0 = time.perf_counter()
        for _ in range(repeats):
            model(xb)
        fwd = (time.perf_counter() - t0) / repeats / batch
    t0 = time.perf_counter()
    for _ in range(repeats):
        xg = xb.clone().requires_grad_(True)
        torch.autograd.grad(model(xg).softmax(1)[:, 0].sum(), xg)
    both = (time.perf_counter() - t0) / repeats / batch
    return fwd, both


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", default="../shared/data/imagenet-dev")
    ap.add_argument("--every", type=int, default=33)
    ap.add_argument("--limit", type=int, default=2)
    ap.add_argument("--methods", nargs="+", default=["igos", "igospp", "mask", "rise", "ig", "gradcam", "ebp",
                                                     "gradient"])
    ap.add_argument("--resolutions", nargs="+", type=int, default=[224, 112, 28, 14, 7])
    ap.add_argument("--model", default="efficientnet-lite0")
    args = ap.parse_args()
    preset = igos.load_model(args.model)
    model = preset.model
    files = find_images([args.images])[:: args.every][: args.limit]
    x = torch.stack([preset.read(f) for f in files])
    device = next(model.buffers()).device
    costs = {}
    print(f"{len(files)} photos, {args.model}, {torch.get_num_threads()} threads; seconds per image; shares of wall "
          "time (exclusive); floor = images x measured cost of one image at the method's batch size")
    print("method | resolution | s/img | " + " | ".join(CATEGORIES) + " | line search incl. its forwards | fwd img | "
          "fwd+bwd img | floor s/img | s / floor")
    for name in args.methods:
        method = recommended_method(28) if name == "auto" else name  # auto: the recommended method at each side
        spec = igos.get_method(method)
        sizes = args.resolutions if spec.resolutions == "any" and method != "ebp" else [None]
        for size in sizes:
            method, options = recommended(size) if name == "auto" else (name, {})
            spec = igos.get_method(method)
            tracer = Tracer(device)
            images_f = images_b = 0
            t0 = time.perf_counter()
            with traced(model, tracer):
                for i in range(len(x)):  # one photo at a time, as igos explain does for one image
                    r = spec(model, x[i : i + 1], None, resolution=size, **options)
                    images_f += r.forward_images
                    images_b += r.backward_images
            wall = time.perf_counter() - t0
            inside = sum(tracer.seconds.values())
            tracer.seconds["rest"] += wall - inside
            bs = r.options.batch_size or 16
            if bs not in costs:
                costs[bs] = image_costs(model, x, bs)
            c_f, c_fb = costs[bs]
            n = len(x)
            floor = (images_f * c_f + images_b * c_fb) / n
            shares = " | ".join(f"{100 * tracer.seconds.get(c, 0.0) / wall:.0f} %" for c in CATEGORIES)
            label = "native" if size is None else str(size)
            search = 100 * tracer.inclusive.get("line search", 0.0) / wall
            print(f"{name} | {label} | {wall / n:.2f} | {shares} | {search:.0f} % | {images_f / n:.0f} | "
                  f"{images_b / n:.0f} | "
                  f"{floor:.2f} | {wall / n / floor if floor else float('nan'):.2f}", flush=True)
    for bs, (c_f, c_fb) in sorted(costs.items()):
        print(f"one image at batch {bs}: forward {1000 * c_f:.1f} ms, forward+backward {1000 * c_fb:.1f} ms")


if __name__ == "__main__":
    main()
