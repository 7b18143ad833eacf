"""Peak device memory of one call: what the ``mem / budget`` column compares with the outputs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional

import torch


def peak_extra_memory(fn: Callable[[], Any], device: torch.device) -> Optional[int]:
    """Bytes the device allocator peaked at above what was allocated before one call (outputs included)."""
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    result = fn()
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) - before
    del result
    return int(peak)
