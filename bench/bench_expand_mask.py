"""GrowMask: the stock node's scipy code on the CPU vs ``expand_mask``, by radius, mode and batch.

Providers per case:
- ``stock``: ``reference.grow_mask_node`` (the stock node: ``|expand|`` scipy steps per mask, CPU).
- ``node``: ``GrowMaskFused``'s boundary with ComfyUI's defaults: the CPU mask to the GPU, the
  kernels, the result back to the CPU (what a workflow waits for); masks of
  ``transfer.PIPELINE_MIN_BYTES`` or more (the 81- and 16-frame cases) through the chunked pipeline
  of ``comfyui/transfer.py``, which returns a pinned CPU tensor.
- ``node-plain`` / ``node-pipelined``: the same with the pipeline off / on whatever the size
  (one pageable upload, the kernels, one pageable download / the chunked pipeline), to choose
  ``transfer.PIPELINE_MIN_BYTES`` and see what the pipeline saves.
- ``node-pageable``: the pipeline with a pageable output (``transfer.PINNED_OUTPUT = False``: each
  chunk lands in a pinned buffer and the host copies it out), to choose ``PINNED_OUTPUT``.
- ``fused``: ``expand_mask`` on a mask already on the GPU; ``extra_info["gpu_ms"]`` is the
  CUDA-graph replay time (GPU alone), ``gbps`` its bytes moved (mask read + result written) per
  second and ``copy_fraction`` that over a device-to-device copy of the same bytes.
- ``torch-gpu``: the pure-torch path (``ops.expand_mask_torch``) on the GPU, for scale.
- ``torch-cpu``: the pure-torch path on the CPU (what ``--cpu`` ComfyUI runs).

GPU cases carry the ``gpu`` marker; the small CPU case smoke-tests the file in CI. At the end a
table of the ratios the issue sets targets for (time at expand 64 / expand 1, copy fraction,
node speed-up over stock) is written to the terminal.

    python -m pytest bench/bench_expand_mask.py --benchmark-json bench/results/expand-mask.json
"""

from __future__ import annotations

import statistics
import time
from typing import NamedTuple

import pytest
import torch

import inpaint_fused as ifd
from inpaint_fused import reference
from inpaint_fused.comfyui import masks, transfer
from inpaint_fused.ops.expand_mask_torch import expand_mask_torch

pytest.importorskip("pytest_benchmark")
pytest.importorskip("scipy")

CUDA = torch.cuda.is_available()


class Case(NamedTuple):
    batch: int
    h: int
    w: int
    expand: int
    tapered: bool
    gpu: bool = True

    @property
    def id(self) -> str:
        mode = "taper" if self.tapered else "square"
        return f"{self.batch}x{self.h}x{self.w}-e{self.expand}-{mode}"


CASES = [
    *(Case(1, 1024, 1024, e, t) for t in (True, False) for e in (1, 16, 64)),
    *(Case(81, 480, 832, 16, t) for t in (True, False)),
    *(Case(16, 1024, 1024, 16, t) for t in (True, False)),
    *(Case(1, 256, 256, e, t, gpu=False) for t in (True, False) for e in (1, 16)),
]
NODE_PROVIDERS = ["node", "node-plain", "node-pipelined", "node-pageable"]
PROVIDERS = ["stock", *NODE_PROVIDERS, "fused", "torch-gpu", "torch-cpu"]
GPU_PROVIDERS = {*NODE_PROVIDERS, "fused", "torch-gpu"}


def _mask(case: Case) -> torch.Tensor:
    """A grey mask as users grow them: a feathered blob per frame on zeros."""
    g = torch.Generator().manual_seed(case.expand)
    rows = torch.linspace(-1, 1, case.h)[:, None]
    cols = torch.linspace(-1, 1, case.w)[None, :]
    centres = torch.rand(case.batch, 2, generator=g) - 0.5
    dist = (rows - centres[:, 0, None, None]) ** 2 + (cols - centres[:, 1, None, None]) ** 2
    return (1.5 - 4 * dist).clamp(0, 1).contiguous()


def _params():
    for case in CASES:
        for provider in PROVIDERS:
            if not case.gpu and provider in GPU_PROVIDERS:
                continue
            if case.gpu and provider == "torch-cpu":
                continue
            marks = pytest.mark.gpu if case.gpu or provider in GPU_PROVIDERS else ()
            yield pytest.param(case, provider, id=f"{case.id}-{provider}", marks=marks)


def _sync() -> None:
    if CUDA:
        torch.cuda.synchronize()


def _median_s(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        _sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@pytest.fixture(scope="module")
def summary(request):
    """Times per (case, provider), and the target ratios written to the terminal at the end."""
    results: dict[tuple[str, str], dict] = {}
    yield results
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or not results:
        return
    reporter.write_line("")
    reporter.write_line("expand_mask targets (ms; ratios):")
    for case in CASES:
        got = {p: results[(case.id, p)] for p in PROVIDERS if (case.id, p) in results}
        if not got:
            continue
        line = f"  {case.id:28s} " + " ".join(f"{p}={r['median_ms']:.3f}" for p, r in got.items())
        if "fused" in got and "gpu_ms" in got["fused"]:
            line += f" gpu={got['fused']['gpu_ms']:.4f} copy_fraction={got['fused']['copy_fraction']:.2f}"
        if "stock" in got and "node" in got:
            line += f" node_speedup={got['stock']['median_ms'] / got['node']['median_ms']:.0f}x"
        for variant in NODE_PROVIDERS[1:]:
            if "stock" in got and variant in got:
                line += f" {variant}_speedup={got['stock']['median_ms'] / got[variant]['median_ms']:.0f}x"
        reporter.write_line(line)
    for tapered in (True, False):
        one = results.get((Case(1, 1024, 1024, 1, tapered).id, "fused"), {}).get("gpu_ms")
        big = results.get((Case(1, 1024, 1024, 64, tapered).id, "fused"), {}).get("gpu_ms")
        if one and big:
            reporter.write_line(f"  1024^2 {'taper' if tapered else 'square'}: gpu time e64 / e1 = {big / one:.2f}")


@pytest.mark.parametrize(("case", "provider"), list(_params()))
def test_expand_mask(benchmark, summary, monkeypatch, case: Case, provider: str):
    mask = _mask(case)
    itemsize = mask.element_size()
    info = {"case": case.id, "provider": provider, "bytes_moved": 2 * mask.numel() * itemsize}
    if provider == "stock":
        fn = lambda: reference.grow_mask_node(mask, case.expand, case.tapered)  # noqa: E731
        rounds = 1 if case.gpu else 3
    elif provider == "torch-cpu":
        fn = lambda: expand_mask_torch(mask, case.expand, case.tapered)  # noqa: E731
        rounds = 5
    elif provider in NODE_PROVIDERS:
        if provider != "node":
            monkeypatch.setattr(transfer, "PIPELINE_MIN_BYTES", 2**62 if provider == "node-plain" else 0)
        if provider == "node-pageable":
            monkeypatch.setattr(transfer, "PINNED_OUTPUT", False)
        info["pipeline"] = transfer.uses_pipeline(mask, torch.device("cuda"), torch.device("cpu"))
        cuda = torch.device("cuda")
        cpu = torch.device("cpu")
        fn = lambda: masks.grow_mask(mask, case.expand, case.tapered, device=cuda, output_device=cpu)  # noqa: E731
        rounds = 20
    else:
        on_gpu = mask.cuda()
        op = ifd.expand_mask if provider == "fused" else expand_mask_torch
        fn = lambda: op(on_gpu, case.expand, case.tapered)  # noqa: E731
        rounds = 50
    fn()  # warm-up: compilation, allocator
    _sync()
    info["median_ms"] = _median_s(fn, rounds) * 1e3
    if provider == "fused":
        import triton.testing

        info["gpu_ms"] = triton.testing.do_bench_cudagraph(fn, rep=200)
        copy_src = torch.empty_like(on_gpu)
        copy_dst = torch.empty_like(on_gpu)
        copy_ms = triton.testing.do_bench_cudagraph(lambda: copy_dst.copy_(copy_src), rep=200)
        info["gbps"] = info["bytes_moved"] / info["gpu_ms"] * 1e-6
        info["copy_gbps"] = info["bytes_moved"] / copy_ms * 1e-6
        info["copy_fraction"] = info["gbps"] / info["copy_gbps"]
    benchmark.group = case.id
    benchmark.extra_info.update(info)
    summary[(case.id, provider)] = info

    def synchronized():
        fn()
        _sync()

    benchmark.pedantic(synchronized, rounds=rounds, warmup_rounds=0)
