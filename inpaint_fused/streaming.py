"""Streaming a clip through a VAE in slices: uploads, out-of-memory back-off, progress.

The machinery behind :func:`inpaint_fused.encode_batched` and
:func:`inpaint_fused.encode_for_inpaint_batched`, independent of which VAE encodes and how:

- :func:`upload`: one copy to the device, from the CPU to a GPU through pinned memory, not blocking.
- :class:`_Uploader`: per-frame sources are sliced and uploaded chunk by chunk on a side CUDA stream
  through two reused pinned buffers, so the upload of chunk i + 1 overlaps the encode of chunk i;
  whole sources (one mask for every frame, one image under many masks) go up once.
- :class:`SliceSizes`: the out-of-memory policy. A slice that runs out of memory is halved (with
  ceiling: 7 -> 4 -> 2 -> 1) and retried; after a run of successful slices the size doubles back
  towards ``per_batch``; a size that was grown back and fails again doubles the run it takes to grow.
- :func:`stream`: the loop. Progress is reported after every successful slice with its frame count,
  to a caller's callback (ComfyUI's ``ProgressBar.update``) or a ``tqdm`` bar.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NamedTuple, Optional

import torch

__all__ = ["OUT_OF_MEMORY", "Progress", "SliceSizes", "stream", "upload"]

logger = logging.getLogger(__name__)

OUT_OF_MEMORY = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
Progress = Callable[[int], None]
EncodeSlice = Callable[[list[torch.Tensor], int, int], torch.Tensor]


def upload(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """One copy to ``device``; from the CPU to a GPU through pinned memory, not blocking the host."""
    if tensor.device == device:
        return tensor
    if device.type == "cuda" and tensor.device.type == "cpu":
        if not tensor.is_pinned():
            staged = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
            tensor = staged.copy_(tensor)
        return tensor.to(device, non_blocking=True)
    return tensor.to(device)


class SliceSizes:
    """How many frames the next slice encodes, after out-of-memory failures and successes.

    Starts at ``per_batch``. A failure of ``n`` frames sets the size to ``ceil(n / 2)``. After
    ``patience`` consecutive successes the size doubles, capped at ``per_batch``, so a transient
    shortage of memory does not slow the rest of the clip. When a size reached by growing fails
    again, the memory limit is likely real: ``patience`` doubles, so a persistent limit costs a
    failed attempt ever more rarely (after 8, 16, 32... successes).
    """

    def __init__(self, per_batch: int, patience: int = 8):
        self.per_batch = per_batch
        self.size = per_batch
        self.patience = patience
        self._successes = 0
        self._grown = False  # the current size was reached by growing and has not succeeded since

    def failed(self, n: int) -> None:
        """A slice of ``n >= 2`` frames ran out of memory."""
        if self._grown:
            self.patience *= 2
        self.size = (n + 1) // 2
        self._successes = 0
        self._grown = False

    def succeeded(self) -> None:
        """A slice was encoded."""
        self._grown = False
        self._successes += 1
        if self.size < self.per_batch and self._successes >= self.patience:
            self.size = min(self.per_batch, self.size * 2)
            self._successes = 0
            self._grown = True


class _Staging:
    """Uploads slices of a CPU tensor to a GPU on a side stream through two reused pinned buffers.

    Slot ``k`` of the pinned buffers is refilled only after its previous copy has finished (its event);
    the device copy is allocated on the side stream and handed to the compute stream with an event
    and ``record_stream``, so the upload of the next slice runs while the current one is encoded.
    """

    def __init__(self, source: torch.Tensor, rows: int, device: torch.device, side: torch.cuda.Stream):
        self.source = source
        self.device = device
        self.side = side
        shape = (rows, *source.shape[1:])
        self.buffers = [torch.empty(shape, dtype=source.dtype, pin_memory=True) for _ in range(2)]
        self.copied: list[Optional[torch.cuda.Event]] = [None, None]
        self.slot = 0

    def upload(self, start: int, stop: int) -> tuple[torch.Tensor, torch.cuda.Event]:
        slot, self.slot = self.slot, 1 - self.slot
        if self.copied[slot] is not None:
            self.copied[slot].synchronize()
        n = stop - start
        if n > self.buffers[slot].shape[0]:
            self.buffers[slot] = torch.empty((n, *self.source.shape[1:]), dtype=self.source.dtype, pin_memory=True)
        staged = self.buffers[slot][:n]
        staged.copy_(self.source[start:stop])
        with torch.cuda.stream(self.side):
            on_device = staged.to(self.device, non_blocking=True)
            done = torch.cuda.Event()
            done.record(self.side)
        self.copied[slot] = done
        return on_device, done


class _Chunk(NamedTuple):
    start: int
    stop: int
    parts: tuple[Optional[torch.Tensor], ...]  # per source: its rows of this chunk on the device, or None
    ready: Optional[torch.cuda.Event]


class _Uploader:
    """Per-frame sources (sliced with the frames) and whole sources (uploaded once) on the device."""

    def __init__(self, sources: list[tuple[torch.Tensor, bool]], rows: int, device: torch.device):
        self.device = device
        self.sources = sources
        streaming = device.type == "cuda"
        self.side = torch.cuda.Stream(device) if streaming else None
        self.whole = [None if sliced else upload(tensor, device) for tensor, sliced in sources]
        self.staging = [
            _Staging(tensor, rows, device, self.side) if streaming and sliced and tensor.device.type == "cpu" else None
            for tensor, sliced in sources
        ]

    def upload(self, start: int, stop: int) -> _Chunk:
        parts: list[Optional[torch.Tensor]] = []
        ready = None
        for (tensor, sliced), staging in zip(self.sources, self.staging, strict=True):
            if not sliced:
                parts.append(None)
            elif staging is not None:
                part, ready = staging.upload(start, stop)
                parts.append(part)
            else:
                parts.append(upload(tensor[start:stop], self.device))
        return _Chunk(start, stop, tuple(parts), ready)

    def take(self, chunk: _Chunk) -> list[torch.Tensor]:
        """The chunk's tensors, usable on the current stream."""
        if chunk.ready is not None:
            current = torch.cuda.current_stream(self.device)
            current.wait_event(chunk.ready)
            for part in chunk.parts:
                if part is not None:
                    part.record_stream(current)
        return [whole if part is None else part for part, whole in zip(chunk.parts, self.whole, strict=True)]

    def finish(self) -> None:
        if self.side is not None:
            self.side.synchronize()


@contextmanager
def _reporter(total: int, progress: Optional[Progress]) -> Iterator[Progress]:
    """The caller's callback, else a ``tqdm`` bar of ``total`` frames, else nothing."""
    if progress is not None:
        yield progress
        return
    try:
        from tqdm.auto import tqdm
    except ImportError:
        yield lambda n: None
        return
    with tqdm(total=total, unit="frame", desc="VAE encode") as bar:
        yield bar.update


def stream(
    device: torch.device,
    total: int,
    per_batch: int,
    sources: list[tuple[torch.Tensor, bool]],
    encode_slice: EncodeSlice,
    progress: Optional[Progress] = None,
) -> list[torch.Tensor]:
    """Encodes ``total`` frames in slices on ``device``: the outputs of the slices, in frame order.

    ``sources``: ``(tensor, per_frame)`` pairs; a per-frame tensor is sliced with the frames, the
    others are uploaded whole. ``encode_slice(tensors, lo, hi)`` encodes rows ``lo:hi`` of the
    current chunk's device tensors. Chunks of up to ``per_batch`` frames are uploaded one ahead;
    each chunk is encoded in slices of ``sizes.size`` frames (see :class:`SliceSizes`).

    Raises:
        torch.OutOfMemoryError: a single frame does not fit (chained to the VAE's own error).
        Whatever ``encode_slice`` or ``progress`` raise otherwise (ComfyUI's cancel), at once.
    """
    sizes = SliceSizes(per_batch)
    uploader = _Uploader(sources, per_batch, device)
    outputs: list[torch.Tensor] = []
    try:
        with _reporter(total, progress) as report:
            chunk = uploader.upload(0, min(per_batch, total))
            while chunk is not None:
                tensors = uploader.take(chunk)
                following = chunk.stop
                upcoming = uploader.upload(following, min(following + per_batch, total)) if following < total else None
                position = chunk.start
                while position < chunk.stop:
                    n = min(sizes.size, chunk.stop - position)
                    lo = position - chunk.start
                    out_of_memory = False
                    try:
                        outputs.append(encode_slice(tensors, lo, lo + n))
                    except OUT_OF_MEMORY as error:
                        if n == 1:
                            raise OUT_OF_MEMORY(
                                f"inpaint-fused: the VAE ran out of memory on a single frame (frame {position} of "
                                f"{total}), the smallest slice there is; free device memory or encode smaller "
                                f"images: {error}"
                            ) from error
                        out_of_memory = True
                    if out_of_memory:
                        # Out of the except block, so the failed attempt's tensors are freed first.
                        sizes.failed(n)
                        if device.type == "cuda":
                            torch.cuda.empty_cache()
                        logger.warning(
                            "inpaint-fused: out of memory encoding %d frames; retrying with %d", n, sizes.size
                        )
                        continue
                    sizes.succeeded()
                    position += n
                    report(n)
                chunk = upcoming
    finally:
        uploader.finish()
    return outputs
