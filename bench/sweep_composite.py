"""GPU: ImageCompositeMasked's kernel under a few tile configs, GPU time by CUDA-graph replay.

    PYTHONPATH=$PWD python bench/sweep_composite.py          # ~1 min on an H200

For float32 RGB images of 1024^2 and 16 x 1024^2 (destination and source the same size, x = y = 0,
so the window is the whole image), a mask that is absent, at the source's size, or 512^2 (resized by
the stock ``F.interpolate``, which runs inside the op and is timed with it): the median GPU time of
``composite_masked`` (``triton.testing.do_bench_cudagraph``: no host time), the bytes it must move
(destination read, output written, source read, mask read at the source size; the resized case also
the interpolate's read and write) and the time of a device-to-device copy of the same bytes
(``copy %``: copy time / kernel time, 100 % is the copy's speed), registers and spills of the kernel,
and the stock node's GPU time on the same inputs. Every config's output is checked against the stock
node first. ``GPU_TILE`` in ``inpaint_fused/ops/composite_masked.py`` is the default config (marked ``*``).
Replays do not clear the L2 cache: at 1024^2 (42 MB) the inputs may stay in an H200's 50 MB L2, and the
copy's bytes too, so read 16 x 1024^2 for bandwidth and 1024^2 for what a small launch costs.
"""

from __future__ import annotations

import argparse
import functools

import torch
from triton.testing import do_bench_cudagraph

import inpaint_fused as ifd
from inpaint_fused import _backend, reference
from inpaint_fused.ops import composite_masked

# (BLOCK_ROWS, BLOCK, num_warps): BLOCK elements of a row
CONFIGS = [
    (1, 1024, 4), (2, 1024, 4), (4, 1024, 8), (1, 2048, 8), (2, 2048, 8), (4, 512, 4), (8, 256, 4), (1, 512, 2),
]  # fmt: skip
SIZES = {"1024": (1, 1024, 1024), "16x1024": (16, 1024, 1024)}
MASKS = ("none", "same", "resized")
DEVICE = "cuda"


def inputs(size: str, mask_kind: str) -> tuple:
    batch, h, w = SIZES[size]
    g = torch.Generator(device=DEVICE).manual_seed(0)
    destination = torch.rand(batch, h, w, 3, device=DEVICE, generator=g)
    source = torch.rand(batch, h, w, 3, device=DEVICE, generator=g)
    mask = {"none": None, "same": (batch, h, w), "resized": (batch, 512, 512)}[mask_kind]
    if mask is not None:
        mask = torch.rand(mask, device=DEVICE, generator=g)
    return destination, source, mask


def bytes_moved(destination: torch.Tensor, mask) -> int:
    pixels = destination.shape[0] * destination.shape[1] * destination.shape[2]
    total = 3 * destination.numel() * destination.element_size()  # destination + source read, output written
    if mask is not None:
        total += 4 * pixels  # the mask at the source's size, read once per pixel
        if mask.shape[-2:] != destination.shape[1:3]:
            total += 4 * pixels + mask.numel() * 4  # the interpolate writes it, reading the small mask
    return total


def gpu_ms(fn, rep: int) -> float:
    """Median GPU milliseconds per call, by replaying a CUDA graph of many calls (no host time)."""
    return do_bench_cudagraph(fn, rep=rep, return_mode="median")


def copy_ms(nbytes: int) -> float:
    src = torch.empty(nbytes // 2, dtype=torch.uint8, device=DEVICE)
    dst = torch.empty_like(src)
    return gpu_ms(lambda: dst.copy_(src), 100)


def kernel_stats() -> str:
    fn = _backend.load_kernels()._composite_masked_kernel
    stats = set()
    for cache in fn.device_caches.values():
        for compiled in cache[0].values():
            stats.add(f"regs={compiled.n_regs} spills={compiled.n_spills}")
        cache[0].clear()
    return " ".join(sorted(stats))


def sweep_case(size: str, mask_kind: str, rep: int, default: tuple) -> None:
    destination, source, mask = inputs(size, mask_kind)
    call_args = (destination, source, 0, 0, False, mask)
    nbytes = bytes_moved(destination, mask)
    copy = copy_ms(nbytes)
    want = reference.composite_masked_node(*call_args)
    stock = gpu_ms(functools.partial(reference.composite_masked_node, *call_args), rep)
    print(f"\n{size} mask={mask_kind}: {nbytes / 1e6:.0f} MB, copy {copy * 1e3:.1f} us, stock {stock * 1e3:.1f} us")
    for config in CONFIGS:
        composite_masked.GPU_TILE = config
        assert torch.equal(ifd.composite_masked(*call_args), want), f"{config}: differs from the stock node"
        ms = gpu_ms(functools.partial(ifd.composite_masked, *call_args), rep)
        mark = "*" if config == default else " "
        print(
            f"{mark} rows={config[0]:2d} block={config[1]:5d} warps={config[2]} "
            f": {ms * 1e3:7.1f} us  "
            f"copy {100 * copy / ms:5.1f} %  {stock / ms:5.1f}x stock  {kernel_stats()}"
        )
    composite_masked.GPU_TILE = default


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rep", type=int, default=100, help="milliseconds of replays per measurement")
    args = parser.parse_args()
    default = composite_masked.GPU_TILE
    print(f"{torch.cuda.get_device_name()}; default GPU_TILE {default}")
    for size in SIZES:
        for mask_kind in MASKS:
            sweep_case(size, mask_kind, args.rep, default)


if __name__ == "__main__":
    main()
