"""The precompute run: plan, split across ranks, decode in workers, mask + prepare + encode on the device, write.

Pipeline of one rank (the VAE is meant to be the only busy part):

1. DataLoader workers decode a batch (Pillow), resize and crop it, read its mask file or draw its
   random mask parameters, into pinned memory;
2. the main thread copies the NEXT batch to the GPU on a side stream while the current one runs;
3. on the device: masks rasterized, the fused preparation (``prepare_inpaint`` / ``_was``) writes the
   VAE input, the VAE encodes; results go back to pinned host memory without a sync;
4. a writer thread stacks a finished shard and writes it (atomic), so disk time overlaps encoding.

Under ``torchrun`` (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` in the environment) shard ``i`` goes to rank
``i % world``; batches never cross shards, so every shard is computed from the same batches whatever
the split, and rank 0 writes ``index.json`` after a barrier.
"""

from __future__ import annotations

import concurrent.futures
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F
from tqdm import tqdm

from .. import reference
from ..api import prepare_inpaint, prepare_inpaint_was
from . import masks as masks_module
from .errors import PrecomputeError, require_extra
from .shards import OutputDir, Shard, ids_digest, plan_shards
from .sources import DECODE_ERRORS, ParquetReader, Sources, decode_image, decode_mask, list_sources, match_masks
from .vae_loading import LoadedVAE, load_vae

RESIZE = "shorter side to size (Pillow bicubic, JPEG draft), centre crop"


@dataclass
class PrecomputeConfig:
    """Everything a run needs; see ``inpaint-fused precompute --help`` for each field."""

    source: Path
    vae: Path
    out: Path
    size: int = 512
    batch_size: int = 16
    shard_size: int = 1000
    image_column: str = "image"
    masks_dir: Optional[Path] = None
    family: masks_module.MaskFamily = field(default_factory=masks_module.MaskFamily)
    grow: int = 6
    was_offset: Optional[int] = None
    keep_original: bool = False
    full_mask: bool = False
    workers: Optional[int] = None
    device: str = "auto"
    dtype: Optional[torch.dtype] = None
    scaling_factor: Optional[float] = None
    shift_factor: Optional[float] = None
    progress: bool = True
    max_shards: Optional[int] = None  # stop after this many shards of this rank (a clean "kill between shards")


@dataclass
class Summary:
    """What a run did (all ranks): images encoded now, skipped now, shards written now or found finished."""

    images: int
    skipped: int
    shards_written: int
    shards_done_before: int
    seconds: float
    skipped_ids: list[str]  # unreadable samples of every shard (from the index)
    index: Optional[Path]  # None while shards remain (a run stopped by max_shards), and on ranks other than 0

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0

    def lines(self) -> list[str]:
        out = [
            f"images   {self.images} encoded, {self.skipped} skipped (unreadable)",
            f"shards   {self.shards_written} written, {self.shards_done_before} already finished (resumed)",
            f"time     {self.seconds:.1f} s, {self.images_per_s:.1f} images/s",
        ]
        if self.skipped_ids:
            shown = ", ".join(self.skipped_ids[:10]) + (" ..." if len(self.skipped_ids) > 10 else "")
            out.append(f"skipped  {len(self.skipped_ids)} in all shards: {shown}")
        out.append(f"index    {self.index}" if self.index else "index    not written: shards remain (run again)")
        return out


class _Batch(NamedTuple):
    shard: Shard
    indices: tuple[int, ...]
    last: bool  # the shard's last batch


def _as_is(item):
    return item


class _Dataset(torch.utils.data.Dataset):
    """Decodes one whole batch per item (a worker reads a Parquet row group once for its batch)."""

    def __init__(self, sources: Sources, mask_files, config: PrecomputeConfig):
        self.sources = sources
        self.mask_files = mask_files
        self.size = config.size
        self.rows = config.batch_size
        self.family = config.family
        self.reader = ParquetReader(sources) if sources.parquet else None

    def _image(self, index: int):
        if index < len(self.sources.images):
            return decode_image(self.sources.images[index], self.size)
        data = self.reader.read(index)
        if data is None:
            raise ValueError("the row has no image bytes")
        return decode_image(data, self.size)

    def __getitem__(self, batch: _Batch) -> dict:
        import numpy as np

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
            "images": torch.from_numpy(np.stack(images))
            if images
            else torch.empty((0, size, size, 3), dtype=torch.uint8),
        }
        if self.mask_files is not None:
            item["masks"] = (
                torch.from_numpy(np.stack(masks)) if masks else torch.empty((0, size, size), dtype=torch.uint8)
            )
        else:
            ids = [self.sources.ids[i] for i in kept]
            item["params"] = masks_module.batch_params(ids, self.family, size, self.rows)
        return item


class _Distributed:
    """RANK/WORLD_SIZE/LOCAL_RANK from torchrun (one process otherwise); nccl on CUDA, gloo on the CPU."""

    def __init__(self, device_name: str):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if device_name == "auto":
            device_name = "cuda" if torch.cuda.is_available() else "cpu"
        if device_name == "cuda":
            if not torch.cuda.is_available():
                raise PrecomputeError(f"--device cuda: no CUDA GPU is available to this torch ({torch.__version__})")
            self.device = torch.device("cuda", self.local_rank % torch.cuda.device_count())
            torch.cuda.set_device(self.device)
        else:
            self.device = torch.device(device_name)
        self.owns_group = False
        if self.world > 1 and not torch.distributed.is_initialized():
            torch.distributed.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
            self.owns_group = True

    def barrier(self) -> None:
        if self.world > 1:
            if self.device.type == "cuda":
                torch.distributed.barrier(device_ids=[self.device.index])
            else:
                torch.distributed.barrier()

    def total(self, values: list[float], op=None) -> list[float]:
        if self.world == 1:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(tensor, op=op or torch.distributed.ReduceOp.SUM)
        return tensor.tolist()

    def close(self) -> None:
        if self.owns_group:
            torch.distributed.destroy_process_group()


def _settings(config: PrecomputeConfig, sources: Sources, vae: LoadedVAE) -> dict:
    """What decides the output's bits: the run's fingerprint and every shard's header (no paths)."""
    was = config.was_offset is not None
    return {
        "samples": len(sources),
        "ids_sha256": ids_digest(sources.ids),
        "image_column": config.image_column if sources.parquet else None,
        "size": config.size,
        "resize": RESIZE,
        "batch_size": config.batch_size,
        "shard_size": config.shard_size,
        "masks": "files" if config.masks_dir else {"random": config.family.settings()},
        "prepare": {"op": "prepare_inpaint_was", "mask_offset": config.was_offset}
        if was
        else {"op": "prepare_inpaint", "grow_mask_by": config.grow},
        "vae": {"device": vae.device.type, **vae.settings()},
        "tensors": _tensor_names(config),
        "latent_mask": f"max over each {vae.ratio}x{vae.ratio} cell of the noise mask, uint8 0/1",
    }


def _paths(config: PrecomputeConfig) -> dict:
    """Where the inputs were (recorded in run.json and index.json; may differ between nodes and restarts)."""
    masks = str(Path(config.masks_dir).resolve()) if config.masks_dir else None
    return {"source": str(Path(config.source).resolve()), "vae": str(Path(config.vae).resolve()), "masks": masks}


def _tensor_names(config: PrecomputeConfig) -> list[str]:
    names = ["masked_latent", "latent_mask"]
    if config.keep_original:
        names.append("latent")
    if config.full_mask:
        names.append("mask")
    return names


class _Encoder:
    """The device part of a batch: masks, fused preparation, encodes; results copied back without a sync."""

    def __init__(self, config: PrecomputeConfig, vae: LoadedVAE):
        self.config = config
        self.vae = vae
        self.was = config.was_offset is not None

    def __call__(self, batch: dict) -> dict[str, torch.Tensor]:
        config, vae = self.config, self.vae
        pixels = batch["images"].to(torch.float32).div_(255.0)
        n = pixels.shape[0]
        if "masks" in batch:
            mask = batch["masks"].to(torch.float32).div_(255.0)
        else:
            mask = masks_module.rasterize(batch["params"], config.size)[:n]
        if self.was:
            prepared = prepare_inpaint_was(pixels, mask, config.was_offset, vae_dtype=vae.dtype)
        else:
            prepared = prepare_inpaint(pixels, mask, config.grow, downscale_ratio=vae.ratio, vae_dtype=vae.dtype)
        out = {
            "masked_latent": vae.encode(prepared.pixels),
            "latent_mask": F.max_pool2d(prepared.noise_mask, vae.ratio).to(torch.uint8),
        }
        if config.keep_original:
            out["latent"] = vae.encode(reference.vae_input(pixels, vae.dtype).contiguous())
        if config.full_mask:
            out["mask"] = prepared.noise_mask.to(torch.uint8)
        return out

    def empty(self) -> dict[str, torch.Tensor]:
        size, ratio = self.config.size, self.vae.ratio
        latent = (0, self.vae.vae.config.latent_channels, size // ratio, size // ratio)
        shapes = {
            "masked_latent": (latent, self.vae.dtype),
            "latent_mask": ((0, 1, size // ratio, size // ratio), torch.uint8),
            "latent": (latent, self.vae.dtype),
            "mask": ((0, 1, size, size), torch.uint8),
        }
        return {name: torch.empty(*shapes[name][:1], dtype=shapes[name][1]) for name in _tensor_names(self.config)}


def _to_host(tensors: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], Optional[torch.cuda.Event]]:
    """Copy to pinned host memory without blocking; the event says when the copies are done."""
    if not any(t.is_cuda for t in tensors.values()):
        return tensors, None
    host = {}
    for name, tensor in tensors.items():
        host[name] = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True).copy_(tensor, non_blocking=True)
    done = torch.cuda.Event()
    done.record()
    return host, done


def _upload(batch: dict, device: torch.device, stream) -> tuple[dict, Optional[torch.cuda.Event]]:
    """Start the copy of a batch's tensors to the device on ``stream`` (a side stream on CUDA)."""
    moved = dict(batch)
    if device.type != "cuda":
        if "params" in batch:
            moved["params"] = masks_module.MaskParams(*(t.to(device) for t in batch["params"]))
        return moved, None
    with torch.cuda.stream(stream):
        for key in ("images", "masks"):
            if key in batch:
                moved[key] = batch[key].to(device, non_blocking=True)
        if "params" in batch:
            moved["params"] = masks_module.MaskParams(*(t.to(device, non_blocking=True) for t in batch["params"]))
        ready = torch.cuda.Event()
        ready.record(stream)
    return moved, ready


def _consume(moved: dict, ready: Optional[torch.cuda.Event]) -> dict:
    """Make the compute stream wait for a batch's upload, and keep its memory alive until used there."""
    if ready is not None:
        current = torch.cuda.current_stream()
        current.wait_event(ready)
        tensors = [moved[k] for k in ("images", "masks") if k in moved] + list(moved.get("params", ()))
        for tensor in tensors:
            tensor.record_stream(current)
    return moved


class _ShardWriter:
    """Collects a shard's batches and writes finished shards on a background thread (two at most in flight)."""

    def __init__(self, output: OutputDir, encoder: _Encoder, ids: list[str]):
        self.output = output
        self.encoder = encoder
        self.ids = ids
        self.pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="precompute-writer")
        self.pending: list[concurrent.futures.Future] = []
        self.parts: list[tuple[dict, Optional[torch.cuda.Event]]] = []
        self.kept: list[int] = []
        self.skipped: list[tuple[str, str]] = []
        self.records: list[dict] = []

    def add(self, shard: Shard, results, indices: list[int], skipped: list[tuple[str, str]], last: bool) -> None:
        if results is not None:
            self.parts.append(results)
        self.kept.extend(indices)
        self.skipped.extend(skipped)
        if last:
            while len(self.pending) >= 2:
                self.records.append(self.pending.pop(0).result())
            job = (shard, self.parts, [self.ids[i] for i in self.kept], self.skipped)
            self.pending.append(self.pool.submit(self._write, *job))
            self.parts, self.kept, self.skipped = [], [], []

    def _write(self, shard: Shard, parts, ids: list[str], skipped) -> dict:
        for _, done in parts:
            if done is not None:
                done.synchronize()
        if parts:
            tensors = {name: torch.cat([p[name] for p, _ in parts]) for name in parts[0][0]}
        else:
            tensors = self.encoder.empty()
        return self.output.write(shard, tensors, ids, skipped)

    def finish(self) -> list[dict]:
        try:
            while self.pending:
                self.records.append(self.pending.pop(0).result())
        finally:
            self.pool.shutdown(wait=True)
        return self.records


def _batches(shards: list[Shard], batch_size: int) -> list[_Batch]:
    items = []
    for shard in shards:
        starts = range(shard.start, shard.stop, batch_size)
        for start in starts:
            stop = min(start + batch_size, shard.stop)
            items.append(_Batch(shard, tuple(range(start, stop)), stop == shard.stop))
    return items


def _check_config(config: PrecomputeConfig, ratio: int) -> None:
    if config.size < 1 or config.size % ratio or (config.was_offset is not None and config.size % 8):
        need = ratio if config.was_offset is None else max(ratio, 8)
        raise PrecomputeError(f"--size must be a positive multiple of {need} (the VAE's ratio), got {config.size}")
    if config.batch_size < 1:
        raise PrecomputeError(f"--batch-size must be >= 1, got {config.batch_size}")
    if config.grow < 0:
        raise PrecomputeError(f"--grow must be >= 0, got {config.grow}")


def run(config: PrecomputeConfig) -> Summary:
    """Precompute masked latents for a dataset; resumable, one process or one per GPU under torchrun.

    Raises:
        PrecomputeError: bad input found before any work (sources, masks, VAE, output folder, sizes).
    """
    require_extra("safetensors", "writing shards")
    dist = _Distributed(config.device)
    try:
        return _run(config, dist)
    finally:
        dist.close()


def _run(config: PrecomputeConfig, dist: _Distributed) -> Summary:
    sources = list_sources(Path(config.source), config.image_column)
    mask_files = match_masks(sources, config.masks_dir) if config.masks_dir is not None else None
    vae = load_vae(Path(config.vae), dist.device, config.dtype, config.scaling_factor, config.shift_factor)
    _check_config(config, vae.ratio)
    output = OutputDir(config.out, _settings(config, sources, vae), _paths(config))
    output.check()
    dist.barrier()
    if dist.rank == 0:
        output.start()
    dist.barrier()

    plan = plan_shards(len(sources), config.shard_size)
    mine = [shard for shard in plan if shard.index % dist.world == dist.rank]
    todo = [shard for shard in mine if output.record(shard) is None]
    done_before = len(mine) - len(todo)
    if config.max_shards is not None:
        todo = todo[: config.max_shards]
    output.remove_partial(todo)

    encoder = _Encoder(config, vae)
    writer = _ShardWriter(output, encoder, sources.ids)
    workers = config.workers if config.workers is not None else min(8, os.cpu_count() or 1)
    cuda = dist.device.type == "cuda"
    loader = torch.utils.data.DataLoader(
        _Dataset(sources, mask_files, config),
        batch_size=None,
        sampler=_batches(todo, config.batch_size),
        num_workers=workers,
        collate_fn=_as_is,
        pin_memory=cuda,
        prefetch_factor=2 if workers else None,
    )
    stream = torch.cuda.Stream(dist.device) if cuda else None
    total = sum(s.stop - s.start for s in todo)
    bar = tqdm(total=total, unit="img", disable=not config.progress or dist.rank != 0, smoothing=0.1)
    images = 0
    start = time.perf_counter()
    with torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True), torch.inference_mode():
        batches = iter(loader)
        upcoming = next(batches, None)
        upcoming = _upload(upcoming, dist.device, stream) if upcoming is not None else None
        while upcoming is not None:
            batch = _consume(*upcoming)
            following = next(batches, None)
            upcoming = _upload(following, dist.device, stream) if following is not None else None
            n = batch["images"].shape[0]
            results = _to_host(encoder(batch)) if n else None
            writer.add(batch["shard"], results, batch["indices"], batch["skipped"], batch["last"])
            images += n
            bar.update(n + len(batch["skipped"]))
        records = writer.finish()
    elapsed = time.perf_counter() - start
    bar.close()

    skipped_now = sum(len(r["skipped"]) for r in records)
    count, skipped, written, before = dist.total([images, skipped_now, len(records), done_before])
    (seconds,) = dist.total([elapsed], torch.distributed.ReduceOp.MAX if dist.world > 1 else None)
    dist.barrier()
    index_path, skipped_ids = None, []
    if dist.rank == 0 and all(output.record(shard) is not None for shard in plan):
        index = output.write_index(plan)
        index_path = output.path / "index.json"
        skipped_ids = [s["id"] for shard in index["shards"] for s in shard["skipped"]]
    dist.barrier()
    return Summary(int(count), int(skipped), int(written), int(before), seconds, skipped_ids, index_path)
