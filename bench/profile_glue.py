"""Host time of the Python glue per call (core ops and the mask chain), the kernels themselves replaced by no-ops.

Validation, dispatch (``_call``), geometry, allocations and the launch arguments of each public
function and node, on tiny CPU tensors, with ``_backend.uses_triton`` forced on and every Triton
kernel a no-op: what is left is the host time our code adds in front of the launch (Triton's own
launch cost comes on top on a GPU). Runs on any machine, no GPU needed:

    PYTHONPATH=$PWD python bench/profile_glue.py            # microseconds per call, best of 30 batches
    PYTHONPATH=$PWD python bench/profile_glue.py --profile feather   # cProfile of one case

Not a pytest module: nothing here is collected by ``bench/conftest.py`` (no ``bench_`` prefix).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

import torch

import inpaint_fused as ifd
from inpaint_fused import _backend
from inpaint_fused.comfyui import masks as nodes


class _NoOpKernel:
    def __getitem__(self, grid):
        return lambda *args, **kwargs: None


class _NoOpKernels:
    def __getattr__(self, name):
        return _NoOpKernel()


def cases() -> dict:
    g = torch.Generator().manual_seed(0)
    mask = torch.rand(1, 16, 16, generator=g)
    image = torch.rand(1, 16, 16, 3, generator=g)
    small = torch.rand(1, 8, 8, generator=g)
    return {
        "feather": lambda: ifd.feather_mask(mask, 4, 4, 4, 4),
        "threshold": lambda: ifd.threshold_mask(mask, 0.5),
        "composite": lambda: ifd.composite_masked(image, image, 2, 3, False, mask),
        "composite-nomask": lambda: ifd.composite_masked(image, image, 0, 0, False, None),
        "composite-resized-mask": lambda: ifd.composite_masked(image, image, 0, 0, False, small),
        "conditioning": lambda: ifd.prepare_inpaint_conditioning(image, mask),
        "prepare_inpaint g6 bf16": lambda: ifd.prepare_inpaint(image, mask, 6, vae_dtype=torch.bfloat16),
        "prepare_inpaint_was -3": lambda: ifd.prepare_inpaint_was(image, mask, -3),
        "expand-taper": lambda: ifd.expand_mask(mask, 3, True),
        "expand-square": lambda: ifd.expand_mask(mask, 3, False),
        "node-feather": lambda: nodes.feather(mask, 4, 4, 4, 4),
        "node-threshold": lambda: nodes.threshold(mask, 0.5),
        "node-composite": lambda: nodes.composite(image, image, 2, 3, False, mask),
    }


def per_call_us(fn, calls: int, batches: int = 30) -> float:
    for _ in range(calls // 10):
        fn()
    samples = []
    for _ in range(batches):
        start = time.perf_counter_ns()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter_ns() - start) / calls / 1e3)
    return min(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--profile", default=None, help="print a cProfile of this case instead")
    parser.add_argument("--torch-path", action="store_true", help="time the pure-torch paths instead (real work)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if not args.torch_path:
        _backend.uses_triton = lambda device: True
        _backend.load_kernels = lambda: _NoOpKernels()
    table = cases()
    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(lambda: [table[args.profile]() for _ in range(args.calls)])
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)
        return
    with torch.inference_mode():
        for name, fn in table.items():
            print(f"{name:24s} {per_call_us(fn, args.calls):8.1f} us")


if __name__ == "__main__":
    main()
