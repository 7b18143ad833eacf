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
from typing import Optional

import torch
import torch.nn.functional as F
from tqdm import tqdm

from .. import reference
from ..api import prepare_inpaint, prepare_inpaint_was
from . import masks as masks_module
from .batches import BatchDataset, as_is, consume, plan_batches, upload
from .distributed import Distributed
from .errors import PrecomputeError, require_extra
from .shards import OutputDir, Shard, ids_digest, plan_shards
from .sources import Sources, list_sources, match_masks
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
        # Bytes become b / 255 correctly rounded, as Pillow -> numpy -> ComfyUI computes them on the CPU.
        # A divisor in a device tensor: CUDA turns a Python-scalar divisor into a multiply by its
        # reciprocal, which differs in the last bit for some bytes.
        self.byte_scale = torch.full((), 255.0, dtype=torch.float32, device=vae.device)

    def __call__(self, batch: dict) -> dict[str, torch.Tensor]:
        config, vae = self.config, self.vae
        pixels = batch["images"].to(torch.float32).div_(self.byte_scale)
        n = pixels.shape[0]
        if "masks" in batch:
            mask = batch["masks"].to(torch.float32).div_(self.byte_scale)
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
    dist = Distributed(config.device)
    try:
        return _run(config, dist)
    finally:
        dist.close()


def _run(config: PrecomputeConfig, dist: Distributed) -> Summary:
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
        BatchDataset(sources, mask_files, config.size, config.batch_size, config.family),
        batch_size=None,
        sampler=plan_batches(todo, config.batch_size),
        num_workers=workers,
        collate_fn=as_is,
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
        upcoming = upload(upcoming, dist.device, stream) if upcoming is not None else None
        while upcoming is not None:
            batch = consume(*upcoming)
            n = batch["images"].shape[0]
            results = _to_host(encoder(batch)) if n else None  # queued on the GPU: the host goes on at once
            following = next(batches, None)  # decoded by the workers meanwhile; its upload overlaps this encode
            upcoming = upload(following, dist.device, stream) if following is not None else None
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
