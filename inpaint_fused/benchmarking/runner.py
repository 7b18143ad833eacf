"""The runner: measures (case, provider) pairs on one device and keeps their records.

One record per pair: the whole-call time (median and quartiles over the runs), the GPU time alone
(CUDA-graph replay; ``None`` with ``gpu_only_reason`` where there is none), bytes moved, GB/s and
the fraction of the run's copy bandwidth for both, peak extra memory and torch.compile's compile
time. ``inpaint-fused bench`` and the pytest-benchmark files of ``bench/`` both time through
:meth:`Runner.measure_samples`: the same code, the same numbers.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch

from .cases import Case, make_inputs
from .memory import peak_extra_memory
from .providers import (
    Prepared,
    Skip,
    bind,
    cudnn_autotuning,
    provider_device,
    providers_for,
    rotation_count,
    skip_reason,
)
from .results import available_cpus, environment, save_results
from .roofline import copy_bandwidth, gbps
from .tables import format_time
from .timing import GpuOnly, time_cuda_graph, time_fn


def _phase(provider: str) -> int:
    # Device-side providers first, torch.compile next (bf16 outputs first), the CPU reference last
    # (cheapest first): a run cut short by its time limit loses the slowest baselines, not the
    # project's own numbers.
    return {"torch.compile": 1, "reference-cpu": 2}.get(provider, 0)


def default_budget(device: torch.device, quick: bool) -> float:
    """Timed seconds per measurement (whole calls; the CUDA-graph replays get half as much)."""
    if device.type == "cuda":
        return 0.05 if quick else 0.1
    return 0.25 if quick else 1.0


@dataclass
class Runner:
    """Measures (case, provider) pairs on one device and keeps the records, optionally saved as JSON.

    ``budget_s`` is the timed time per measurement (GPU: ``do_bench``'s ``rep``); ``time_limit_s``
    skips what is left once that much wall time has passed (records say so); ``compile_on_cpu``
    lets ``torch.compile`` run on a CPU-only machine, where it is skipped by default. On a GPU,
    cuDNN autotuning is on while any provider is bound and timed (``meta["cudnn_benchmark"]``).
    """

    device: torch.device
    budget_s: float = 0.5
    time_limit_s: Optional[float] = None
    json_path: Optional[Path] = None
    quick: bool = False
    compile_on_cpu: bool = False
    argv: Optional[list[str]] = None
    records: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    _copy: dict[str, dict[str, Any]] = field(default_factory=dict)
    _inputs: dict[str, tuple[str, list[tuple[torch.Tensor, ...]]]] = field(default_factory=dict)
    _started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.device = torch.device(self.device)
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        torch.set_num_threads(available_cpus())
        self.meta = environment(self.device)
        self.meta.update(
            quick=self.quick,
            budget_s=self.budget_s,
            time_limit_s=self.time_limit_s,
            complete=False,
            argv=self.argv,
            copy={},
            cudnn_benchmark=self.device.type == "cuda",
            gpu_only_timer="cuda-graph-replay" if self.device.type == "cuda" else None,
        )

    # -- roofline and inputs

    def roofline(self, device: torch.device) -> dict[str, Any]:
        if device.type not in self._copy:
            self._copy[device.type] = copy_bandwidth(device)
            self.meta["copy"] = dict(self._copy)
        return self._copy[device.type]

    def inputs(self, case: Case, device: torch.device) -> list[tuple[torch.Tensor, ...]]:
        """Rotating copies of the case's inputs on ``device``; one case per device is kept."""
        key = f"{case.name}@{device}"
        cached = self._inputs.get(device.type)
        if cached is not None and cached[0] == key:
            return cached[1]
        self._inputs.pop(device.type, None)
        if device.type == "cuda":
            torch.cuda.empty_cache()
        first = make_inputs(case, device)
        copies = [first] + [tuple(t.clone() for t in first) for _ in range(rotation_count(case) - 1)]
        self._inputs[device.type] = (key, copies)
        return copies

    def release(self) -> None:
        self._inputs.clear()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    # -- providers

    def provider_device(self, provider: str) -> torch.device:
        return provider_device(provider, self.device)

    def check(self, case: Case, provider: str) -> None:
        """Raise :class:`Skip` with the reason when ``provider`` does not run for ``case`` here."""
        reason = skip_reason(case, provider, self.device, self.quick, self.compile_on_cpu)
        if reason is None and self.time_limit_s is not None and time.monotonic() - self._started > self.time_limit_s:
            reason = f"time limit of {self.time_limit_s:.0f} s reached (--time-limit)"
        if reason is not None:
            raise Skip(reason)

    def prepare(self, case: Case, provider: str) -> Prepared:
        """Bind ``provider`` to ``case``: inputs made, torch.compile compiled (timed apart), warmed up."""
        self.check(case, provider)
        device = self.provider_device(provider)
        copies = [] if provider == "copy" else self.inputs(case, device)
        return bind(case, provider, device, copies)

    # -- measuring

    def record(self, case: Case, provider: str, **values: Any) -> dict[str, Any]:
        device = self.provider_device(provider)
        rec: dict[str, Any] = {
            "suite": case.suite,
            "case": case.name,
            "output": case.output,
            "id": case.id,
            "provider": provider,
            "device": device.type,
            "status": "ok",
            "reason": None,
            "median_ms": None,
            "q25_ms": None,
            "q75_ms": None,
            "reps": 0,
            "timer": "cuda-events" if device.type == "cuda" else "perf_counter",
            "gpu_only_ms": None,
            "gpu_only_reps": 0,
            "gpu_only_reason": None,
            "bytes_moved": case.bytes_moved,
            "gbps": None,
            "roofline_fraction": None,
            "gpu_only_gbps": None,
            "gpu_only_roofline_fraction": None,
            "megapixels": case.megapixels,
            "output_bytes": case.output_bytes,
            "memory_budget_bytes": case.memory_budget,
            "peak_extra_bytes": None,
            "compile_s": None,
            "cudnn_benchmark": None,
            "note": None,
            "params": case.params(),
        }
        rec.update(values)
        self.records.append(rec)
        if self.json_path is not None:
            self.save(self.json_path)
        return rec

    def measure_samples(self, case: Case, provider: str) -> tuple[dict[str, Any], list[float]]:
        """Time ``provider`` on ``case``: its record (kept) and the whole-call samples in ms.

        Never raises for the provider: a skip, an out-of-memory or an error becomes the record's
        status and reason, with no samples.
        """
        device = self.provider_device(provider)
        try:
            with cudnn_autotuning(device) as autotuned:
                prepared = self.prepare(case, provider)
                roofline = self.roofline(prepared.device)
                times = time_fn(prepared.call, prepared.device, self.budget_s)
                median = statistics.median(times)
                if prepared.device.type == "cuda":
                    gpu_only = time_cuda_graph(prepared.call, self.budget_s / 2, median)
                else:
                    gpu_only = GpuOnly(reason=f"runs on the {prepared.device.type.upper()}: no CUDA graph to replay")
                peak = peak_extra_memory(prepared.call, prepared.device)
        except Skip as skip:
            return self.record(case, provider, status="skipped", reason=str(skip)), []
        except torch.cuda.OutOfMemoryError:
            self.release()
            return self.record(case, provider, status="skipped", reason="out of GPU memory"), []
        except Exception as error:  # a failing baseline is a result too; the run goes on
            return self.record(case, provider, status="error", reason=f"{type(error).__name__}: {error}"[:500]), []
        quartiles = statistics.quantiles(times, n=4) if len(times) > 1 else [median, median, median]
        whole = gbps(case.bytes_moved, median)
        gpu_ms = gpu_only.median_ms
        alone = gbps(case.bytes_moved, gpu_ms) if gpu_ms else None
        rec = self.record(
            case,
            provider,
            median_ms=median,
            q25_ms=quartiles[0],
            q75_ms=quartiles[2],
            reps=len(times),
            gpu_only_ms=gpu_ms,
            gpu_only_reps=len(gpu_only.samples_ms),
            gpu_only_reason=gpu_only.reason,
            gbps=whole,
            roofline_fraction=whole / roofline["gbps"],
            gpu_only_gbps=alone,
            gpu_only_roofline_fraction=alone / roofline["gbps"] if alone else None,
            peak_extra_bytes=peak,
            compile_s=prepared.compile_s,
            cudnn_benchmark=autotuned,
            note=prepared.note or None,
        )
        return rec, times

    def measure(self, case: Case, provider: str) -> dict[str, Any]:
        """Time ``provider`` on ``case`` and return (and keep) its record; never raises for the provider."""
        return self.measure_samples(case, provider)[0]

    def plan(self, cases: Sequence[Case], providers: Optional[Sequence[str]] = None) -> list[tuple[Case, str]]:
        pairs = [(case, p) for case in cases for p in providers_for(case) if providers is None or p in providers]
        order = {case.id: i for i, case in enumerate(cases)}

        def rank(pair: tuple[Case, str]) -> tuple[int, int, int]:
            case, provider = pair
            if provider == "reference-cpu":
                return _phase(provider), case.conv_cost, order[case.id]
            if provider == "torch.compile":  # the VAE-input outputs are the headline comparison
                return _phase(provider), case.output != "bf16", order[case.id]
            return _phase(provider), 0, order[case.id]

        return sorted(pairs, key=rank)

    def run(
        self, cases: Sequence[Case], providers: Optional[Sequence[str]] = None, progress: str = "bar"
    ) -> list[dict[str, Any]]:
        """Measure every (case, provider) pair of ``cases``.

        ``progress``: ``"bar"`` (tqdm on stderr; lines when tqdm is missing), ``"lines"`` (one line per
        measurement on stderr, for logs) or ``"none"``.
        """
        plan = self.plan(cases, providers)
        bar = None
        if progress == "bar":
            try:
                from tqdm import tqdm
            except ImportError:
                progress = "lines"
            else:
                bar = tqdm(total=len(plan), desc="bench", unit="run", file=sys.stderr)
        for i, (case, provider) in enumerate(plan):
            if bar is not None:
                bar.set_postfix_str(f"{case.id} {provider}", refresh=True)
            rec = self.measure(case, provider)
            if bar is not None:
                bar.update()
            elif progress == "lines":
                print(f"[{i + 1}/{len(plan)}] {case.id} {provider}: {_progress(rec)}", file=sys.stderr, flush=True)
        if bar is not None:
            bar.close()
        self.finish()
        return self.records

    def finish(self) -> None:
        """Free the inputs, mark the run complete and write the JSON a last time."""
        self.release()
        self.meta["complete"] = True
        if self.json_path is not None:
            self.save(self.json_path)

    def results(self) -> dict[str, Any]:
        return {"meta": self.meta, "results": self.records}

    def save(self, path: Path) -> None:
        save_results(path, self.meta, self.records)


def _progress(rec: dict[str, Any]) -> str:
    if rec["status"] != "ok":
        return f"{rec['status']}: {rec['reason']}"
    if rec["gpu_only_ms"] is None:
        return format_time(rec["median_ms"])
    return f"{format_time(rec['median_ms'])} (GPU alone {format_time(rec['gpu_only_ms'])})"
