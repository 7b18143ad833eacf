"""Batches: planned per shard, decoded in DataLoader workers, copied to the device on a side stream.

A worker decodes a whole batch (one Parquet row group read serves it), reads its mask files or draws
its random mask parameters (small fixed-size tensors), and hands pinned tensors to the main process;
:func:`upload` starts the copy of the next batch on a side CUDA stream while the current one is
encoded, :func:`consume` makes the compute stream wait for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple, Optional

import numpy as np
import torch

from .masks import MaskFamily, MaskParams, batch_params
from .shards import Shard
from .sources import DECODE_ERRORS, ParquetReader, Sources, decode_image, decode_mask


def _stack(arrays: list[np.ndarray], shape: tuple[int, ...]) -> torch.Tensor:
    """``(n, *shape)`` uint8, also for ``n = 0`` (a batch whose every sample was skipped)."""
    return torch.from_numpy(np.stack(arrays)) if arrays else torch.empty((0, *shape), dtype=torch.uint8)


class Batch(NamedTuple):
    """Samples ``indices`` of the sorted list, all in ``shard``."""

    shard: Shard
    indices: tuple[int, ...]
    last: bool  # the shard's last batch


def as_is(item):
    """The DataLoader's collate function: a worker already returns a whole batch."""
    return item


class BatchDataset(torch.utils.data.Dataset):
    """Decodes one whole batch per item (a worker reads a Parquet row group once for its batch)."""

    def __init__(self, sources: Sources, mask_files: Optional[list[Path]], size: int, rows: int, family: MaskFamily):
        self.sources = sources
        self.mask_files = mask_files
        self.size = size
        self.rows = rows
        self.family = family
        self.reader = ParquetReader(sources) if sources.parquet else None

    def _image(self, index: int):
        if index < len(self.sources.images):
            return decode_image(self.sources.images[index], self.size)
        data = self.reader.read(index)
        if data is None:
            raise ValueError("the row has no image bytes")
        return decode_image(data, self.size)

    def __getitem__(self, batch: Batch) -> dict:
        images, masks, kept, skipped = [], [], [], []
        for index in batch.indices:
            sample_id = self.sources.ids[index]
            try:
                image = self._image(index)
            except DECODE_ERRORS as error:
                skipped.append((sample_id, f"image: {type(error).__name__}: {error}"))
                continue
            if self.mask_files is not None:
                try:
                    masks.append(decode_mask(self.mask_files[index], self.size))
                except DECODE_ERRORS as error:
                    skipped.append((sample_id, f"mask: {type(error).__name__}: {error}"))
                    continue
            images.append(image)
            kept.append(index)
        size = self.size
        item = {
            "shard": batch.shard,
            "last": batch.last,
            "indices": kept,
            "skipped": skipped,
            "images": _stack(images, (size, size, 3)),
        }
        if self.mask_files is not None:
            item["masks"] = _stack(masks, (size, size))
        else:
            ids = [self.sources.ids[i] for i in kept]
            item["params"] = batch_params(ids, self.family, size, self.rows)
        return item


def plan_batches(shards: list[Shard], batch_size: int) -> list[Batch]:
    """Each shard's samples in batches of ``batch_size`` (the last of a shard shorter): never across shards."""
    items = []
    for shard in shards:
        starts = range(shard.start, shard.stop, batch_size)
        for start in starts:
            stop = min(start + batch_size, shard.stop)
            items.append(Batch(shard, tuple(range(start, stop)), stop == shard.stop))
    return items


def upload(batch: dict, device: torch.device, stream) -> tuple[dict, Optional[torch.cuda.Event]]:
    """Start the copy of a batch's tensors to the device on ``stream`` (a side stream on CUDA)."""
    moved = dict(batch)
    if device.type != "cuda":
        if "params" in batch:
            moved["params"] = MaskParams(*(t.to(device) for t in batch["params"]))
        return moved, None
    with torch.cuda.stream(stream):
        for key in ("images", "masks"):
            if key in batch:
                moved[key] = batch[key].to(device, non_blocking=True)
        if "params" in batch:
            moved["params"] = MaskParams(*(t.to(device, non_blocking=True) for t in batch["params"]))
        ready = torch.cuda.Event()
        ready.record(stream)
    return moved, ready


def consume(moved: dict, ready: Optional[torch.cuda.Event]) -> dict:
    """Make the compute stream wait for a batch's upload, and keep its memory alive until used there."""
    if ready is not None:
        current = torch.cuda.current_stream()
        current.wait_event(ready)
        tensors = [moved[k] for k in ("images", "masks") if k in moved] + list(moved.get("params", ()))
        for tensor in tensors:
            tensor.record_stream(current)
    return moved
