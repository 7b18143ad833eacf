"""GPU: GPU-only time (CUDA-graph replay) of a few cases under many launch configs, with registers/spills."""

import torch
from triton.testing import do_bench_cudagraph

import inpaint_fused as ifd
from inpaint_fused import _backend, ops

CONFIGS = {
    "A 8x128w4 / 8x512w4 p4": ops.LaunchConfig(8, 128, 4, 8, 512, 4, 4),
    "B 8x128w4 / 4x256w4 p8": ops.LaunchConfig(8, 128, 4, 4, 256, 4, 8),
    "C 8x64w2 / 2x512w4 p8": ops.LaunchConfig(8, 64, 2, 2, 512, 4, 8),
    "D 4x128w4 / 8x128w4 p8": ops.LaunchConfig(4, 128, 4, 8, 128, 4, 8),
    "E 8x128w4 / 4x128w2 p16": ops.LaunchConfig(8, 128, 4, 4, 128, 2, 16),
    "F 16x64w4 / 2x256w2 p16": ops.LaunchConfig(16, 64, 4, 2, 256, 2, 16),
    "G 8x128w4 / 1x512w4 p16": ops.LaunchConfig(8, 128, 4, 1, 512, 4, 16),
}
CASES = [
    ("1024 g6 bf16", 1, 6, False, torch.bfloat16),
    ("16x1024 g6 bf16", 16, 6, False, torch.bfloat16),
    ("16x1024 g0 bf16", 16, 0, False, torch.bfloat16),
    ("1024 was-128 bf16", 1, -128, True, torch.bfloat16),
]


def compiled_stats():
    kernels = _backend.load_kernels()
    stats = []
    for name in ("_box_rows_kernel", "_inpaint_fill_kernel"):
        fn = getattr(kernels, name)
        for cache in fn.device_caches.values():
            for compiled in cache[0].values():
                stats.append(f"{name[1:9]} regs={compiled.n_regs} spills={compiled.n_spills}")
            cache[0].clear()
    return sorted(set(stats))


def main():
    inputs = {}
    for batch in (1, 16):
        inputs[batch] = (torch.rand(batch, 1024, 1024, 3, device="cuda"),
                         (torch.rand(batch, 1024, 1024, device="cuda") > 0.97).float())
    for config_name, config in CONFIGS.items():
        ops.GPU_CONFIG = config
        times = []
        for _, batch, value, was, dtype in CASES:
            fn = ifd.prepare_inpaint_was if was else ifd.prepare_inpaint
            pixels, mask = inputs[batch]
            times.append(do_bench_cudagraph(lambda f=fn, p=pixels, m=mask, v=value, d=dtype: f(p, m, v, vae_dtype=d)))
        print(f"{config_name:26s} " + "  ".join(f"{c[0]} {t * 1e3:7.1f}us" for c, t in zip(CASES, times, strict=True)))
        print("    " + "; ".join(compiled_stats()), flush=True)


if __name__ == "__main__":
    main()
