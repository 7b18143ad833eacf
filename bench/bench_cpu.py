"""Without a GPU: the original nodes' code against the pure-torch path, side by side, on the CPU.

    env -u TRITON_INTERPRET python -m pytest bench/bench_cpu.py \\
        --benchmark-json bench/results/bench-cpu-$(git rev-parse --short HEAD).json
    python bench/cpu_table.py bench/results/bench-cpu-<commit>.json   # README block

A 1024x1024 float32 IMAGE and a same-size blob mask (a few ellipses); the ComfyUI core node at
``grow_mask_by`` 0/1/6/7/64/512 and the WAS node at ``mask_offset`` -128/+6/+128. Providers:
``original`` (``inpaint_fused.reference``, the seed code) and ``torch-path`` (the public API on a
CPU tensor, which runs ``inpaint_fused.ops.torch_path`` wherever Triton's kernels do not). The seed
code's cost grows with the window's area: cases where it would take minutes are skipped with the
estimate. Each record's ``extra_info`` holds the case, provider, CPU, threads, torch and commit.
Run it without ``TRITON_INTERPRET`` (not in one session with ``tests/``).
"""

from __future__ import annotations

import functools

import pytest
import torch

import inpaint_fused as ifd
from inpaint_fused import benchmarking as bm
from inpaint_fused import reference

SIZE = 1024
CORE_GROWS = (0, 1, 6, 7, 64, 512)
WAS_OFFSETS = (-128, 6, 128)
CASES = [f"g{g}" for g in CORE_GROWS] + [f"was{k:+d}" for k in WAS_OFFSETS]
PROVIDERS = ("original", "torch-path")
# The seed's g x g convolution on this 2-core machine: 3e7 multiply-adds per second per thread at worst
# (g=64 on 1024x1024 took 74 s while other jobs ran, 13 s idle). Windows whose estimate exceeds the limit
# are skipped, not run for many minutes.
SEED_MACS_PER_S_PER_THREAD = 3e7
SEED_LIMIT_S = 150.0


@functools.cache
def inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """The IMAGE ``(1, S, S, 3)`` and a blob mask ``(1, S, S)``: five random ellipses, about a fifth of the area."""
    g = torch.Generator().manual_seed(0)
    pixels = torch.rand((1, SIZE, SIZE, 3), generator=g)
    rows, cols = torch.meshgrid(
        torch.arange(SIZE, dtype=torch.float32), torch.arange(SIZE, dtype=torch.float32), indexing="ij"
    )
    mask = torch.zeros((1, SIZE, SIZE))
    for _ in range(5):
        cy, cx, ry, rx = (torch.rand(4, generator=g) * torch.tensor([SIZE, SIZE, SIZE / 6, SIZE / 6])).tolist()
        inside = ((rows - cy) / (ry + 16)) ** 2 + ((cols - cx) / (rx + 16)) ** 2 <= 1
        mask[0][inside] = 1.0
    return pixels, mask


def call(case: str, provider: str):
    pixels, mask = inputs()
    was = case.startswith("was")
    value = int(case[3:] if was else case[1:])
    if provider == "original":
        seed = reference.was_vae_encode_for_inpaint if was else reference.vae_encode_for_inpaint
        return lambda: seed(pixels, mask, value)
    api = ifd.prepare_inpaint_was if was else ifd.prepare_inpaint
    return lambda: api(pixels, mask, value)


def seed_estimate_s(case: str) -> float:
    was = case.startswith("was")
    value = abs(int(case[3:] if was else case[1:]))
    win = 2 * value + 1 if was else value
    return SIZE * SIZE * win * win / (SEED_MACS_PER_S_PER_THREAD * torch.get_num_threads())


@functools.cache
def environment() -> dict:
    env = bm.environment(torch.device("cpu"))
    return {key: env[key] for key in ("cpu", "cpu_threads", "torch", "commit", "commit_dirty", "platform")}


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("case", CASES)
def test_cpu(benchmark, case, provider):
    if ifd.uses_triton(torch.device("cpu")):
        pytest.skip("TRITON_INTERPRET=1 sends CPU tensors to the interpreter: run without it")
    if provider == "original" and seed_estimate_s(case) > SEED_LIMIT_S:
        pytest.skip(f"the seed code's convolution would take about {seed_estimate_s(case):.0f} s per call here")
    fn = call(case, provider)
    estimate = seed_estimate_s(case) if provider == "original" else 0.0
    if estimate < 5:
        fn()  # warm-up, outside the timed rounds
    benchmark.group = case
    benchmark.extra_info.update(case=case, provider=provider, threads=torch.get_num_threads(), **environment())
    # Many rounds of the fast calls: the table takes the best, the one other jobs on a shared machine disturbed least.
    rounds = 1 if estimate > 20 else 3 if estimate > 0.3 else 300
    benchmark.pedantic(fn, rounds=rounds, warmup_rounds=0 if estimate > 0.3 else 3)
