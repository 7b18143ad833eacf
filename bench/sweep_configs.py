"""GPU: GPU-only time (CUDA-graph replay) of a few cases under many launch configs, with registers/spills.

``python3 bench/sweep_configs.py [--profile] [--diffusers]``: ``--profile`` also prints the device time of
each kernel for a few cases (torch.profiler) and where a call's host time goes (cProfile), under the
default config; ``--diffusers`` sweeps the diffusers family's configs (``prepare_masked_image``) too.
Baselines, rooflines and the full matrix are ``inpaint-fused bench``'s.
"""

import argparse

import torch
from triton.testing import do_bench_cudagraph

import inpaint_fused as ifd
from inpaint_fused import _backend
from inpaint_fused.diffusers import prepare_masked_image
from inpaint_fused.ops import launch, prepare_diffusers_inpaint, prepare_inpaint

CONFIGS = {
    "A 8x128w4 / 8x512w4 p4": launch.LaunchConfig(8, 128, 4, 8, 512, 4, 4),
    "B 8x128w4 / 4x256w4 p8": launch.LaunchConfig(8, 128, 4, 4, 256, 4, 8),
    "C 8x64w2 / 2x512w4 p8": launch.LaunchConfig(8, 64, 2, 2, 512, 4, 8),
    "D 4x128w4 / 8x128w4 p8": launch.LaunchConfig(4, 128, 4, 8, 128, 4, 8),
    "E 8x128w4 / 4x128w2 p16": launch.LaunchConfig(8, 128, 4, 4, 128, 2, 16),
    "F 16x64w4 / 2x256w2 p16": launch.LaunchConfig(16, 64, 4, 2, 256, 2, 16),
    "G 8x128w4 / 1x512w4 p16": launch.LaunchConfig(8, 128, 4, 1, 512, 4, 16),
}
DIFFUSERS_CONFIGS = {
    "a 8x128w4 / 8x128w4 p4": launch.LaunchConfig(8, 128, 4, 8, 128, 4, 4),
    "b 8x128w4 / 4x256w4 p8": launch.LaunchConfig(8, 128, 4, 4, 256, 4, 8),
    "c 8x128w4 / 1x512w4 p16": launch.LaunchConfig(8, 128, 4, 1, 512, 4, 16),
    "d 16x64w4 / 2x256w2 p16": launch.LaunchConfig(16, 64, 4, 2, 256, 2, 16),
    "e 8x128w4 / 2x512w4 p8": launch.LaunchConfig(8, 128, 4, 2, 512, 4, 8),
}
DIFFUSERS_CASES = [
    ("1024 g0 bf16", 1, 0),
    ("1024 g6 bf16", 1, 6),
    ("1024 g255 bf16", 1, 255),
    ("4x1024 g6 bf16", 4, 6),
]
CASES = [
    ("1024 g6 bf16", 1, 6, False, torch.bfloat16),
    ("16x1024 g6 bf16", 16, 6, False, torch.bfloat16),
    ("16x1024 g0 bf16", 16, 0, False, torch.bfloat16),
    ("1024 was-128 bf16", 1, -128, True, torch.bfloat16),
]


def compiled_stats(names=("_box_rows_kernel", "_inpaint_fill_kernel")):
    kernels = _backend.load_kernels()
    stats = []
    for name in names:
        fn = getattr(kernels, name)
        for cache in fn.device_caches.values():
            for compiled in cache[0].values():
                stats.append(f"{name[1:9]} regs={compiled.n_regs} spills={compiled.n_spills}")
            cache[0].clear()
    return sorted(set(stats))


def profile_kernels() -> None:
    """Device time per kernel for a few cases (torch.profiler), to see where a case's time goes."""
    from torch.profiler import ProfilerActivity, profile

    for label, batch, size, value, was in [
        ("1024 g6", 1, 1024, 6, False),
        ("16x1024 g6", 16, 1024, 6, False),
        ("1024 was-128", 1, 1024, -128, True),
        ("1024 g0", 1, 1024, 0, False),
    ]:
        pixels = torch.rand(batch, size, size, 3, device="cuda")
        mask = (torch.rand(batch, size, size, device="cuda") > 0.97).float()
        fn = ifd.prepare_inpaint_was if was else ifd.prepare_inpaint
        for _ in range(3):
            fn(pixels, mask, value, vae_dtype=torch.bfloat16)
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(20):
                fn(pixels, mask, value, vae_dtype=torch.bfloat16)
            torch.cuda.synchronize()
        for event in prof.key_averages():
            if event.device_type.name == "CUDA" or "kernel" in event.key:
                total = getattr(event, "device_time_total", None) or getattr(event, "cuda_time_total", 0)
                print(f"  kernel {label:14s} {event.key[:40]:40s} {total / event.count:8.1f} us x{event.count}")


def profile_host() -> None:
    """Where the host time of one call goes (cProfile over 300 calls of a single 1024^2 image)."""
    import cProfile
    import pstats

    pixels = torch.rand(1, 1024, 1024, 3, device="cuda")
    mask = (torch.rand(1, 1024, 1024, device="cuda") > 0.97).float()
    for _ in range(5):
        ifd.prepare_inpaint(pixels, mask, 6, vae_dtype=torch.bfloat16)
    torch.cuda.synchronize()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(300):
        ifd.prepare_inpaint(pixels, mask, 6, vae_dtype=torch.bfloat16)
    profiler.disable()
    torch.cuda.synchronize()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(18)


def sweep_diffusers() -> None:
    """The diffusers family under each of ``DIFFUSERS_CONFIGS``: ``(B, 3, 1024, 1024)`` images, a sparse mask."""
    default_config = prepare_diffusers_inpaint.GPU_CONFIG
    inputs = {}
    for batch in (1, 4):
        inputs[batch] = (
            torch.rand(batch, 3, 1024, 1024, device="cuda") * 2 - 1,
            (torch.rand(1, 1, 1024, 1024, device="cuda") > 0.97).float(),
        )
    for config_name, config in DIFFUSERS_CONFIGS.items():
        prepare_diffusers_inpaint.GPU_CONFIG = config
        times = []
        for _, batch, grow in DIFFUSERS_CASES:
            image, mask = inputs[batch]
            times.append(
                do_bench_cudagraph(
                    lambda i=image, m=mask, g=grow: prepare_masked_image(i, m, dtype=torch.bfloat16, grow_mask_by=g)
                )
            )
        print(
            f"{config_name:26s} "
            + "  ".join(f"{c[0]} {t * 1e3:7.1f}us" for c, t in zip(DIFFUSERS_CASES, times, strict=True))
        )
        print(
            "    " + "; ".join(compiled_stats(("_diffusers_grow_rows_kernel", "_diffusers_inpaint_kernel"))), flush=True
        )
    prepare_diffusers_inpaint.GPU_CONFIG = default_config


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", action="store_true", help="per-kernel device time and host-time profile too")
    parser.add_argument("--diffusers", action="store_true", help="sweep the diffusers family's configs too")
    args = parser.parse_args()
    default_config = prepare_inpaint.GPU_CONFIG
    inputs = {}
    for batch in (1, 16):
        inputs[batch] = (
            torch.rand(batch, 1024, 1024, 3, device="cuda"),
            (torch.rand(batch, 1024, 1024, device="cuda") > 0.97).float(),
        )
    for config_name, config in CONFIGS.items():
        prepare_inpaint.GPU_CONFIG = config
        times = []
        for _, batch, value, was, dtype in CASES:
            fn = ifd.prepare_inpaint_was if was else ifd.prepare_inpaint
            pixels, mask = inputs[batch]
            times.append(do_bench_cudagraph(lambda f=fn, p=pixels, m=mask, v=value, d=dtype: f(p, m, v, vae_dtype=d)))
        print(f"{config_name:26s} " + "  ".join(f"{c[0]} {t * 1e3:7.1f}us" for c, t in zip(CASES, times, strict=True)))
        print("    " + "; ".join(compiled_stats()), flush=True)
    prepare_inpaint.GPU_CONFIG = default_config
    if args.diffusers:
        sweep_diffusers()
    if args.profile:
        profile_kernels()
        profile_host()


if __name__ == "__main__":
    main()
