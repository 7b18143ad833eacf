"""GPU: one call of each named case between ``cudaProfilerStart``/``Stop``, for Nsight Compute.

    ncu --clock-control none --profile-from-start off --section SpeedOfLight \\
        --section MemoryWorkloadAnalysis --section Occupancy --section WarpStateStats \\
        python3 bench/profile_kernels.py 1024x1024-g6 video16x1024x1024-g6 ...

Each case is warmed up (compiled) first, outside the profiled range, so ncu sees exactly the
kernels of one call. Case names are ``inpaint-fused bench``'s (``inpaint_fused.benchmarking.cases``);
``expand:<B>x<H>x<W>:<expand>:<taper|square>`` profiles ``expand_mask`` and
``diffusers:<B>x<S>:<grow>`` the diffusers op. Without ncu it prints each case's GPU time
(CUDA-graph replay), which is also what to compare against ncu's ``Duration`` sums.
"""

from __future__ import annotations

import sys

import torch
from triton.testing import do_bench_cudagraph

import inpaint_fused as ifd
from inpaint_fused.benchmarking import cases


def _call(spec: str):
    if spec.startswith("expand:"):
        _, shape, expand, corners = spec.split(":")
        b, h, w = (int(v) for v in shape.split("x"))
        rows = torch.linspace(0, 1, h, device="cuda").view(1, -1, 1)
        cols = torch.linspace(0, 1, w, device="cuda").view(1, 1, -1)
        mask = (torch.sin(cols * 22.3) * torch.cos(rows * 16.6) * 1.5 + 0.5).clamp(0, 1).expand(b, h, w).contiguous()
        return lambda: ifd.expand_mask(mask, int(expand), corners == "taper")
    if spec.startswith("diffusers:"):
        from inpaint_fused.diffusers import prepare_masked_image

        _, shape, grow = spec.split(":")
        b, s = (int(v) for v in shape.split("x"))
        image = torch.rand(b, 3, s, s, device="cuda") * 2 - 1
        mask = (torch.rand(b, 1, s, s, device="cuda") > 0.97).float()
        return lambda: prepare_masked_image(image, mask, dtype=torch.bfloat16, grow_mask_by=int(grow))
    (case,) = [c for c in cases.parse_case(spec) if c.output == "bf16"]
    pixels, mask = cases.make_inputs(case, torch.device("cuda"))
    if case.op == "was":
        return lambda: ifd.prepare_inpaint_was(pixels, mask, case.value, vae_dtype=torch.bfloat16)
    return lambda: ifd.prepare_inpaint(pixels, mask, case.value, vae_dtype=torch.bfloat16)


def main(specs: list[str]) -> None:
    cudart = torch.cuda.cudart()
    for spec in specs:
        fn = _call(spec)
        for _ in range(3):
            fn()
        torch.cuda.synchronize()
        cudart.cudaProfilerStart()
        fn()
        torch.cuda.synchronize()
        cudart.cudaProfilerStop()
        print(f"{spec:32s} GPU {do_bench_cudagraph(fn) * 1e3:8.1f} us", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
