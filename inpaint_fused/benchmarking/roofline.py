"""The roofline: bytes over time as GB/s, and a device-to-device copy's GB/s to compare them with.

GB/s counts the bytes an operation must move (each input read once, each output written once,
:attr:`~inpaint_fused.benchmarking.cases.Case.bytes_moved`) over its median time; the fraction of
copy bandwidth compares that with a copy measured once per run on the same device (bytes read plus
bytes written over its median time).
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Optional

import torch

from .timing import time_cuda


def gbps(nbytes: int, ms: float) -> float:
    """``nbytes`` moved in ``ms`` milliseconds, in GB/s (1e9 bytes per second)."""
    return nbytes / (ms * 1e-3) / 1e9


def copy_bandwidth(device: torch.device, nbytes: Optional[int] = None) -> dict[str, Any]:
    """The roofline: a device-to-device copy of ``nbytes`` (default 512 MiB on a GPU, 128 MiB on CPU).

    Returns ``{"gbps", "bytes", "median_ms"}`` where ``gbps`` counts bytes read plus bytes written.
    """
    if nbytes is None:
        nbytes = (512 << 20) if device.type == "cuda" else (128 << 20)
    src = torch.ones(nbytes, dtype=torch.uint8, device=device)
    dst = torch.zeros_like(src)
    if device.type == "cuda":
        times = time_cuda(lambda: dst.copy_(src), 0.2)
    else:
        dst.copy_(src)
        times = []
        for _ in range(7):
            start = time.perf_counter()
            dst.copy_(src)
            times.append((time.perf_counter() - start) * 1e3)
    median_ms = statistics.median(times)
    return {"gbps": gbps(2 * nbytes, median_ms), "bytes": nbytes, "median_ms": median_ms}
