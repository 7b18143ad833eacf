"""A per-frame GPU op over a MASK that lives on the CPU: chunked, with the copies overlapped.

ComfyUI keeps node outputs on the CPU, so GrowMaskFused gets an 81-frame 832x480 float32 mask (129 MB)
there and must hand one back there. One ``mask.to("cuda")`` and one ``out.to("cpu")`` of pageable
memory let the driver stage every byte through its own small pinned buffer, one direction at a time,
with nothing else running, and the fresh pageable output takes a page fault per 4 KiB on first touch.
:func:`map_frames` splits the batch by frames (the op is per frame, so chunks give the same values
as the whole) and pipelines them:

- the host copies chunk ``k + 1`` into one of two reused pinned buffers (``streaming._Staging``; a
  batch already pinned, such as a previous GrowMaskFused output, skips that copy) and its upload runs
  on a side stream, while
- chunk ``k`` runs on the current stream, and
- chunk ``k - 1`` is copied back on a third stream straight into a pinned output tensor (the
  caching host allocator's: reused once a previous output is freed), which is returned as is
  (:data:`PINNED_OUTPUT`; else into two pinned buffers that the host copies into a pageable output).

Small masks keep the plain path (:data:`PIPELINE_MIN_BYTES`): with one chunk there is nothing to overlap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Optional

import torch

from ..streaming import _Staging

# Masks of at least this many bytes take the pipeline; chunks of about CHUNK_BYTES (whole frames, at
# least one). Every size does: on the H200 (bench/bench_expand_mask.py, node-plain vs node-pipelined) the
# pipeline took 0.43-0.51 ms for one 1024^2 mask against 0.78-0.88 ms plain, and 5.0 against 100 ms for
# 81 x 480 x 832 frames.
PIPELINE_MIN_BYTES = 0
CHUNK_BYTES = 16 * 2**20
# Return the pinned tensor the chunks were downloaded into (no host copy; PyTorch's host allocator keeps
# the pinned block, rounded up to a power of two, for reuse once the output is freed), or copy into a
# pageable one. On the H200 the pinned output took 5.4 ms for 81 x 480 x 832 frames, the pageable 19 ms.
PINNED_OUTPUT = True


def frames_per_chunk(frames: torch.Tensor, chunk_bytes: Optional[int] = None) -> int:
    """Whole frames of ``frames (B, ...)`` in about ``chunk_bytes`` (:data:`CHUNK_BYTES`): at least 1, at most
    the batch."""
    chunk_bytes = CHUNK_BYTES if chunk_bytes is None else chunk_bytes
    frame_bytes = max(1, frames[0].numel() * frames.element_size())
    return max(1, min(frames.shape[0], chunk_bytes // frame_bytes))


def uses_pipeline(frames: torch.Tensor, device: torch.device, output_device: torch.device) -> bool:
    """A CPU tensor of :data:`PIPELINE_MIN_BYTES` or more, computed on a CUDA device, wanted back on the CPU."""
    return (
        device.type == "cuda"
        and frames.device.type == "cpu"
        and output_device.type == "cpu"
        and frames.numel() * frames.element_size() >= PIPELINE_MIN_BYTES
    )


def map_frames(
    op: Callable[[torch.Tensor], torch.Tensor],
    frames: torch.Tensor,
    device: torch.device,
    chunk: int,
    pinned_output: bool = True,
) -> torch.Tensor:
    """``op`` of CPU ``frames (B, ...)`` computed on ``device``, ``chunk`` frames at a time, back on the CPU.

    ``op`` maps ``(n, ...)`` to ``(n, ...)`` of the same shape and dtype, each frame independently (so
    the seams between chunks change nothing). On a CUDA device the copies overlap the op (module
    docstring) and the result is a pinned CPU tensor, or with ``pinned_output=False`` a pageable one
    (each chunk lands in one of two pinned buffers and the host copies it out while the next chunk
    runs); elsewhere the chunks run one after the other (the same seams, how the tests on a CPU check
    them).

    Shape:
        frames ``(B, ...)`` on the CPU, any strides -> ``(B, ...)`` contiguous on the CPU, its dtype.
    """
    batch = frames.shape[0]
    bounds = [(start, min(start + chunk, batch)) for start in range(0, batch, chunk)]
    if device.type != "cuda":
        out = torch.empty(frames.shape, dtype=frames.dtype)
        for start, stop in bounds:
            out[start:stop] = op(frames[start:stop].to(device))
        return out
    out = torch.empty(frames.shape, dtype=frames.dtype, pin_memory=pinned_output)
    landing = []  # pageable output: each chunk comes back into one of two pinned buffers, the host copies it out
    if not pinned_output:
        landing = [torch.empty((chunk, *frames.shape[1:]), dtype=frames.dtype, pin_memory=True) for _ in range(2)]
    pending: list[tuple[int, int, torch.Tensor, torch.cuda.Event]] = []
    with torch.cuda.device(device):
        compute = torch.cuda.current_stream(device)
        upload_stream, download_stream = torch.cuda.Stream(device), torch.cuda.Stream(device)
        # A pinned contiguous batch (a previous pipeline's output) goes up as is; others through staging.
        pinned_input = frames.is_contiguous() and frames.is_pinned()
        staging = None if pinned_input else _Staging(frames, chunk, device, upload_stream)
        for index, (start, stop) in enumerate(bounds):
            if staging is None:
                with torch.cuda.stream(upload_stream):
                    on_device = frames[start:stop].to(device, non_blocking=True)
                    uploaded = upload_stream.record_event()
            else:
                on_device, uploaded = staging.upload(start, stop)
            compute.wait_event(uploaded)
            on_device.record_stream(compute)
            result = op(on_device)
            download_stream.wait_stream(compute)
            target = out[start:stop] if pinned_output else landing[index % 2][: stop - start]
            with torch.cuda.stream(download_stream):
                target.copy_(result, non_blocking=True)
                downloaded = download_stream.record_event()
            result.record_stream(download_stream)
            if not pinned_output:
                pending.append((start, stop, target, downloaded))
                if len(pending) == 2:  # chunk k - 1 lands while chunk k runs; its buffer is free for k + 1
                    _land(out, *pending.pop(0))
        for landed in pending:
            _land(out, *landed)
        download_stream.synchronize()
    return out


def _land(out: torch.Tensor, start: int, stop: int, landed: torch.Tensor, downloaded: torch.cuda.Event) -> None:
    """Host copy of a downloaded chunk from its pinned buffer into the pageable output, once it has arrived."""
    downloaded.synchronize()
    out[start:stop].copy_(landed)
