"""Timing: the one front end that ``inpaint-fused bench``, ``bench/`` and the demo time calls with.

Two figures per call on a GPU:

- the **whole call** (:func:`time_cuda`): CUDA events around an eager call, Python and launch
  overhead included, L2 cleared before every run (``triton.testing.do_bench``); what a caller waits.
- the **GPU time alone** (:func:`time_cuda_graph`): the same calls captured once in a CUDA graph and
  replayed, so the host's launch overhead drops out; what the kernels cost the device.

On the CPU (:func:`time_cpu`) there is one figure: ``time.perf_counter`` around each call.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Optional

import torch

# A first run slower than this gets a few event-timed runs instead of do_bench's hundreds.
_SLOW_MS = 20.0
# Calls captured in one graph: enough that a replay lasts about this long, within a cap (memory).
_GRAPH_REPLAY_MS = 2.0
_GRAPH_MAX_CALLS = 64
_GRAPH_MAX_REPLAYS = 100


def time_cuda(fn: Callable[[], Any], budget_s: float) -> list[float]:
    """Per-run milliseconds of whole calls on the GPU by CUDA events.

    Fast functions go through ``triton.testing.do_bench`` (warm-up, L2 cleared before every run,
    ``budget_s`` of timed runs); one whose first timed run exceeds 20 ms gets a few event-timed runs
    within the budget, so a multi-second baseline costs seconds, not minutes.
    """
    fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    first = start.elapsed_time(end)
    if first <= _SLOW_MS:
        from triton.testing import do_bench

        budget_ms = budget_s * 1e3
        return list(do_bench(fn, warmup=max(1.0, budget_ms / 4), rep=budget_ms, return_mode="all"))
    times = [first]
    while sum(times) + times[-1] <= budget_s * 1e3 and len(times) < 10:
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return times


def time_cpu(fn: Callable[[], Any], budget_s: float, max_reps: int = 100) -> list[float]:
    """Per-run milliseconds on the CPU by ``time.perf_counter``: a warm-up, then runs within the budget.

    A function whose warm-up alone exceeds the budget (the original code's large convolutions: tens of
    seconds) is not run again: that one run, one-time costs included, is the sample.
    """
    start = time.perf_counter()
    fn()
    first = (time.perf_counter() - start) * 1e3
    if first > budget_s * 1e3:
        return [first]
    times: list[float] = []
    while not times or (sum(times) + times[-1] <= budget_s * 1e3 and len(times) < max_reps):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def time_fn(fn: Callable[[], Any], device: torch.device, budget_s: float) -> list[float]:
    """Per-run milliseconds of whole calls: CUDA events on a GPU, ``perf_counter`` on the CPU."""
    return time_cuda(fn, budget_s) if device.type == "cuda" else time_cpu(fn, budget_s)


@dataclass(frozen=True)
class GpuOnly:
    """The GPU time alone of one measurement, or why there is none (``samples_ms`` empty)."""

    samples_ms: tuple[float, ...] = ()
    calls_per_replay: int = 0
    reason: Optional[str] = None

    @property
    def median_ms(self) -> Optional[float]:
        return statistics.median(self.samples_ms) if self.samples_ms else None


def time_cuda_graph(fn: Callable[[], Any], budget_s: float, whole_call_ms: float) -> GpuOnly:
    """Per-call milliseconds of ``fn`` replayed from a CUDA graph: the GPU time without the host's.

    ``fn`` is warmed up on a side stream (as capture requires: cuDNN's algorithm search, Triton's
    autotuning and allocations happen there), then ``n`` calls are captured in one graph, ``n`` such
    that a replay lasts about 2 ms by ``whole_call_ms`` (at most 64 calls), and replays are
    event-timed within ``budget_s`` (at least 3; one for a call slower than 20 ms). A function that
    cannot be captured (a host synchronisation, a CPU tensor, a capture-unsafe library call) gets no
    samples and the error as its reason.
    """
    calls = max(1, min(_GRAPH_MAX_CALLS, math.ceil(_GRAPH_REPLAY_MS / max(whole_call_ms, 1e-3))))
    slow = whole_call_ms > _SLOW_MS
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    graph = torch.cuda.CUDAGraph()
    try:
        with torch.cuda.stream(stream):
            for _ in range(1 if slow else 2):
                fn()
        torch.cuda.current_stream().wait_stream(stream)
        torch.cuda.synchronize()
        with torch.cuda.graph(graph):
            for _ in range(calls):
                fn()
        graph.replay()
        torch.cuda.synchronize()
    except Exception as error:  # capture is best effort: the reason goes into the record
        torch.cuda.synchronize()
        del graph
        return GpuOnly(reason=f"not capturable in a CUDA graph: {type(error).__name__}: {error}"[:300])
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    samples: list[float] = []
    spent = 0.0
    least = 1 if slow else 3
    while len(samples) < least or (spent + samples[-1] * calls <= budget_s * 1e3 and len(samples) < _GRAPH_MAX_REPLAYS):
        start.record()
        graph.replay()
        end.record()
        end.synchronize()
        replay = start.elapsed_time(end)
        spent += replay
        samples.append(replay / calls)
    del graph
    return GpuOnly(tuple(samples), calls)
