"""GPU: where the host time of one eager call goes, in microseconds per call (back-to-back calls of a
64x64 image, so the GPU never holds the host back and wall time per call is host time).

    python3 bench/host_overhead.py

Rows: a one-element torch op, Triton launches of a kernel with 1 and 26 arguments (the fill kernel has
30 and 11 constexprs), the public call (validation included), the op without validation (geometry,
allocations, one launch: a small call), one ``torch.empty``, and last the op again with two launches
(the path of larger calls).
"""

from __future__ import annotations

import contextlib
import time

import torch
import triton
import triton.language as tl

import inpaint_fused as ifd
from inpaint_fused.ops import launch, prepare_inpaint


@triton.jit
def _store_one(x_ptr):
    tl.store(x_ptr, 1.0)


@triton.jit
def _store_one_many_args(
    x_ptr, a, b, c, d, e, f, g, h, i, j, k, ll, m, n, o, p, q, r, s, t, u, v, w, y, z, Z: tl.constexpr
):
    tl.store(x_ptr, 1.0)


def per_call(fn, calls: int = 3000) -> float:
    for _ in range(50):
        fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / calls * 1e6


@contextlib.contextmanager
def _small_calls_in_two_launches():
    """The one-launch path for small calls switched off (``prepare_inpaint.GPU_ONE_LAUNCH``) inside the block."""
    saved = prepare_inpaint.GPU_ONE_LAUNCH
    prepare_inpaint.GPU_ONE_LAUNCH = saved._replace(max_pixels=0)
    try:
        yield
    finally:
        prepare_inpaint.GPU_ONE_LAUNCH = saved


def main() -> None:
    pixels = torch.rand(1, 64, 64, 3, device="cuda")
    mask = (torch.rand(1, 64, 64, device="cuda") > 0.9).float()
    one = torch.zeros(1, device="cuda")
    ints = list(range(3, 28))

    def implementation():
        return prepare_inpaint.prepare(pixels, mask, launch.core_morphology(6), 8, torch.bfloat16)

    rows = [
        ("torch: one.add_(1)", lambda: one.add_(1)),
        ("triton: 1-argument kernel[grid](...)", lambda: _store_one[(1,)](one)),
        ("triton: 26-argument kernel[grid](...)", lambda: _store_one_many_args[(1,)](one, *ints, Z=1)),
        ("prepare_inpaint (public call)", lambda: ifd.prepare_inpaint(pixels, mask, 6, vae_dtype=torch.bfloat16)),
        ("op implementation (no validation)", implementation),
        ("torch.empty (1, 3, 64, 64) bf16", lambda: torch.empty((1, 3, 64, 64), dtype=torch.bfloat16, device="cuda")),
    ]
    for label, fn in rows:
        print(f"{label:45s} {per_call(fn):7.1f} us", flush=True)
    with _small_calls_in_two_launches():
        print(f"{'op implementation, two launches':45s} {per_call(implementation):7.1f} us", flush=True)


if __name__ == "__main__":
    main()
