"""GPU: GPU-only time (CUDA-graph replay) of a few cases under many launch configs, with registers/spills.

``python3 bench/sweep_configs.py [--profile] [--diffusers] [--expand] [--one-launch]``: each config's result is
checked equal to the default config's (DIFF marks a mismatch); the share is of a device-to-device copy of the
case's bytes (``bench/host_overhead.py`` times whole calls and launches on the host). ``--profile`` also prints
the device time of each kernel for a few cases (torch.profiler) and where a call's host time goes (cProfile),
under the default config; ``--one-launch`` times small calls in two launches against one-launch tile settings
(``prepare_inpaint.OneLaunch``), to place its size limit; ``--diffusers`` sweeps the diffusers family's configs
(``prepare_masked_image``) too. Baselines, rooflines and the full matrix are ``inpaint-fused bench``'s.
"""

import argparse

import torch
from triton.testing import do_bench_cudagraph

import inpaint_fused as ifd
from inpaint_fused import _backend
from inpaint_fused.benchmarking import cases
from inpaint_fused.diffusers import prepare_masked_image
from inpaint_fused.ops import expand_mask, prepare_diffusers_inpaint, prepare_inpaint

CONFIGS = {
    "default": prepare_inpaint.GPU_CONFIG,
}
DIFFUSERS_CONFIGS = {
    "default": prepare_diffusers_inpaint.GPU_CONFIG,
    "default, one-row image tiles of 1024": prepare_diffusers_inpaint.GPU_CONFIG._replace(fill_block_w=1024),
}
DIFFUSERS_CASES = [
    ("1024 g0 bf16", 1, 1, 0),
    ("1024 g6 bf16", 1, 1, 6),
    ("1024 g255 bf16", 1, 1, 255),
    ("16x1024 g6 shared", 16, 1, 6),
    ("16x1024 g6 16masks", 16, 16, 6),
]
# (label, case spec of inpaint_fused.benchmarking.cases)
CASES = [
    ("1024 g6", "1024x1024-g6"),
    ("16x g6", "video16x1024x1024-g6"),
    ("b16 g6", "b16x1024x1024-g6"),
    ("4096 g6", "4096x4096-g6"),
    ("2048 g6", "2048x2048-g6"),
    ("2048 g64", "2048x2048-g64"),
    ("was-128", "1024x1024-was-128"),
    ("was+6", "1024x1024-was+6"),
    ("video81", "video81x480x832-g6"),
]


def _timed_cells(calls: dict, expected: dict, copy_rate: float) -> list[str]:
    """GPU time (CUDA-graph replay) and share of copy of each ``label: (fn, bytes moved)``, DIFF where the result
    differs from ``expected[label]`` (a tensor or a sequence of them), FAILED where the config does not compile."""
    cells = []
    for label, (fn, moved) in calls.items():
        try:
            got, want = fn(), expected[label]
            if isinstance(want, torch.Tensor):
                got, want = [got], [want]
            same = all(torch.equal(a, b) for a, b in zip(got, want, strict=True))
            seconds = do_bench_cudagraph(fn) * 1e-3
        except Exception as error:  # a config that does not compile: say so, go on
            cells.append(f"{label} FAILED {type(error).__name__}")
            continue
        share = moved / seconds / copy_rate * 100
        cells.append(f"{label} {seconds * 1e6:6.1f}us {share:3.0f}%{'' if same else ' DIFF'}")
    return cells


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


def sweep_diffusers(copy_rate: float) -> None:
    """The diffusers family under each of ``DIFFUSERS_CONFIGS``: ``(B, 3, 1024, 1024)`` images, sparse masks;
    each result checked equal to the default config's."""
    default_config = prepare_diffusers_inpaint.GPU_CONFIG
    calls = {}
    for label, batch, masks, grow in DIFFUSERS_CASES:
        image = torch.rand(batch, 3, 1024, 1024, device="cuda") * 2 - 1
        mask = (torch.rand(masks, 1, 1024, 1024, device="cuda") > 0.97).float()
        moved = image.numel() * 4 + mask.numel() * 4 + batch * 3 * 1024 * 1024 * 2 + masks * 128 * 128 * 2
        calls[label] = (
            lambda i=image, m=mask, g=grow: prepare_masked_image(i, m, dtype=torch.bfloat16, grow_mask_by=g),
            moved,
        )
    expected = {label: [t.clone() for t in fn()] for label, (fn, _) in calls.items()}
    for config_name, config in DIFFUSERS_CONFIGS.items():
        prepare_diffusers_inpaint.GPU_CONFIG = config
        print(f"{config_name:26s} " + "  ".join(_timed_cells(calls, expected, copy_rate)))
        print(
            "    " + "; ".join(compiled_stats(("_diffusers_grow_rows_kernel", "_diffusers_inpaint_kernel"))), flush=True
        )
    prepare_diffusers_inpaint.GPU_CONFIG = default_config


EXPAND_CONFIGS = {
    "x default": expand_mask.GPU_CONFIG,
    "f former (rot 32x32, taps 16x64, p8, runs 4 radii)": expand_mask.GPU_CONFIG._replace(
        rotated=expand_mask.ScanConfig(32, 32, 4), tile_h=16, programs_per_sm=8, run_radii=8
    ),
    "n runs 4 radii": expand_mask.GPU_CONFIG._replace(run_radii=8),
    "n runs 1 radius": expand_mask.GPU_CONFIG._replace(run_radii=2),
    "n runs 1 radius p32": expand_mask.GPU_CONFIG._replace(run_radii=2, programs_per_sm=32),
}
EXPAND_CASES = [(f"e{e} {'taper' if taper else 'square'}", e, taper) for taper in (True, False) for e in (1, 16, 64)]
EXPAND_CASES_ONE = [(f"e{e} {'taper' if taper else 'square'}", e, taper) for taper in (True, False) for e in (1, 64)]


def sweep_expand(copy_rate: float) -> None:
    """``expand_mask`` of a 16 x 1024^2 and a 1024^2 grey mask under each of ``EXPAND_CONFIGS``, checked against
    the default's."""
    default_config = expand_mask.GPU_CONFIG
    rows = torch.linspace(0, 1, 1024, device="cuda").view(1, -1, 1)
    cols = torch.linspace(0, 1, 1024, device="cuda").view(1, 1, -1)
    phase = torch.arange(16, device="cuda", dtype=torch.float32).view(-1, 1, 1)
    mask = (torch.sin(cols * 22.3 + phase) * torch.cos(rows * 16.6) * 1.5 + 0.5).clamp(0, 1)
    calls = {}
    for batch in (16, 1):
        for label, e, taper in EXPAND_CASES if batch == 16 else EXPAND_CASES_ONE:
            one = mask[:batch]
            calls[f"{'' if batch == 16 else '1x '}{label}"] = (
                lambda m=one, e=e, t=taper: ifd.expand_mask(m, e, t),
                2 * one.numel() * 4,
            )
    expected = {label: fn().clone() for label, (fn, _) in calls.items()}
    for config_name, config in EXPAND_CONFIGS.items():
        expand_mask.GPU_CONFIG = config
        print(f"{config_name:26s} " + "  ".join(_timed_cells(calls, expected, copy_rate)), flush=True)
        print("    " + "; ".join(compiled_stats(("_running_max_kernel", "_diamond_taps_kernel"))), flush=True)
    expand_mask.GPU_CONFIG = default_config


ONE_LAUNCH_CASES = [
    ("512 g6", "512x512-g6"),
    ("1024 g6", "1024x1024-g6"),
    ("1024 g32", "1024x1024-g32"),
    ("1024 g64", "1024x1024-g64"),
    ("was+6", "1024x1024-was+6"),
    ("was-50", "1024x1024-was-50"),
    ("b2 1024 g6", "b2x1024x1024-g6"),
    ("1536 g6", "1536x1536-g6"),
    ("2048 g6", "2048x2048-g6"),
]
ONE_LAUNCH_CONFIGS = {
    "two launches": prepare_inpaint.CAPTURED_ONE_LAUNCH,
    "1x64 w1 s4": prepare_inpaint.OneLaunch(1 << 40, 1 << 20, 1, 64, 1, 4),
    "1x64 w1 s8": prepare_inpaint.OneLaunch(1 << 40, 1 << 20, 1, 64, 1, 8),
    "1x128 w1 s4": prepare_inpaint.OneLaunch(1 << 40, 1 << 20, 1, 128, 1, 4),
    "4x64 w2 s4": prepare_inpaint.OneLaunch(1 << 40, 1 << 20, 4, 64, 2, 4),
    "1x256 w2 s4": prepare_inpaint.OneLaunch(1 << 40, 1 << 20, 1, 256, 2, 4),
}


def sweep_one_launch(copy_rate: float) -> None:
    """Small calls in two launches against one launch under each of ``ONE_LAUNCH_CONFIGS`` (GPU time; the
    timing's CUDA-graph capture takes the config too, not the two launches captures take by default)."""
    default = prepare_inpaint.GPU_ONE_LAUNCH, prepare_inpaint.CAPTURED_ONE_LAUNCH
    prepare_inpaint.GPU_ONE_LAUNCH = ONE_LAUNCH_CONFIGS["two launches"]
    calls = {label: _case_call(spec) for label, spec in ONE_LAUNCH_CASES}
    expected = {label: [t.clone() for t in fn()] for label, (fn, _) in calls.items()}
    for config_name, config in ONE_LAUNCH_CONFIGS.items():
        prepare_inpaint.GPU_ONE_LAUNCH = prepare_inpaint.CAPTURED_ONE_LAUNCH = config
        print(f"{config_name:14s} " + "  ".join(_timed_cells(calls, expected, copy_rate)), flush=True)
    prepare_inpaint.GPU_ONE_LAUNCH, prepare_inpaint.CAPTURED_ONE_LAUNCH = default


def _case_call(spec: str):
    (case,) = [c for c in cases.parse_case(spec) if c.output == "bf16"]
    pixels, mask = cases.make_inputs(case, torch.device("cuda"))
    fn = ifd.prepare_inpaint_was if case.op == "was" else ifd.prepare_inpaint
    return lambda: fn(pixels, mask, case.value, vae_dtype=torch.bfloat16), case.bytes_moved


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", action="store_true", help="per-kernel device time and host-time profile too")
    parser.add_argument("--diffusers", action="store_true", help="sweep the diffusers family's configs too")
    parser.add_argument("--expand", action="store_true", help="sweep expand_mask's configs too")
    parser.add_argument("--skip-core", action="store_true", help="skip the core family's sweep")
    parser.add_argument("--one-launch", action="store_true", help="two launches against one for small calls")
    args = parser.parse_args()
    copy_rate = _copy_rate()
    print(f"copy {copy_rate / 1e9:.0f} GB/s")
    default_config = prepare_inpaint.GPU_CONFIG
    calls = {} if args.skip_core else {label: _case_call(spec) for label, spec in CASES}
    expected = {label: [t.clone() for t in fn()] for label, (fn, _) in calls.items()}
    for config_name, config in ({} if args.skip_core else CONFIGS).items():
        prepare_inpaint.GPU_CONFIG = config
        print(f"{config_name:26s} " + "  ".join(_timed_cells(calls, expected, copy_rate)))
        print("    " + "; ".join(compiled_stats()), flush=True)
    prepare_inpaint.GPU_CONFIG = default_config
    if args.diffusers:
        sweep_diffusers(copy_rate)
    if args.expand:
        sweep_expand(copy_rate)
    if args.one_launch:
        sweep_one_launch(copy_rate)
    if args.profile:
        profile_kernels()
        profile_host()


def _copy_rate() -> float:
    """Bytes per second of a device-to-device copy (read + write counted), as ``inpaint-fused bench`` measures it."""
    from inpaint_fused.benchmarking.roofline import copy_bandwidth

    return copy_bandwidth(torch.device("cuda"))["gbps"] * 1e9


if __name__ == "__main__":
    main()
