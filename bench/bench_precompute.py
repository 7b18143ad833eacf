"""``inpaint-fused precompute`` at dataset scale on one GPU: is the VAE the only busy part?

One run measures, on generated 512x512 JPEGs and an SD-architecture AutoencoderKL with random
weights (diffusers' SD config: block_out_channels (128, 256, 512, 512), 2 layers per block, 4
latent channels) in bf16:

(a) ceiling: the same VAE encoding the same number of batches already on the GPU (no decode, no
    masks, no copies), under the run's cuDNN settings (deterministic, no autotuning) and, for
    reference, with cuDNN autotuning;
(b) the full ``precompute`` run: images/s from its summary (decode, masks, preparation, encodes,
    shards written); target >= 90 % of (a);
(c) "the standard way": Pillow decode, a CPU mask of the same family (Pillow ImageDraw), the seed
    node's masking on the CPU, all in DataLoader workers, then ``vae.encode`` on the GPU;
(d) the mask generator, per image at batch 64: ids -> masks on the GPU (draw + rasterizer kernels)
    vs the CPU generator of the same family (the same draw on CPU tensors + Pillow ImageDraw of the
    same shapes, one core); target >= 10x. ``python bench/bench_masks.py`` measures (d) alone.

    python bench/bench_precompute.py --json bench/results/precompute-h200.json   # ~3-4 min on an H200
    python bench/bench_precompute.py --torchrun 2 --json ...   # also: torchrun on 2 GPUs, shards equal to (b)'s?
    python -m pytest bench/bench_precompute.py                                     # the same, skipped without CUDA

``--images``, ``--batch-size``, ``--workers``, ``--no-keep-original`` change the run. The JSON has the GPU,
versions and commit; ``bench/precompute_table.py`` turns it into the README block.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from inpaint_fused import benchmarking, reference  # noqa: E402
from inpaint_fused.precompute import (  # noqa: E402
    MaskFamily,
    PrecomputeConfig,
    batch_params,
    draw_params,
    load_vae,
    masks_for,
    rasterize,
    run,
)
from inpaint_fused.precompute import masks as masks_module  # noqa: E402
from inpaint_fused.precompute.sources import decode_image, list_sources  # noqa: E402

SD_VAE = dict(
    block_out_channels=(128, 256, 512, 512),
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    layers_per_block=2,
    latent_channels=4,
    norm_num_groups=32,
    scaling_factor=0.18215,
)


def _write_jpeg(job: tuple[Path, int, int]) -> None:
    from PIL import Image

    path, seed, size = job
    rng = np.random.default_rng(seed)
    # Photo-like: smooth colour fields plus fine grain (pure noise would make unrealistically large JPEGs).
    base = Image.fromarray(rng.integers(0, 256, (size // 32, size // 32, 3), dtype=np.uint8))
    smooth = np.asarray(base.resize((size, size), Image.Resampling.BICUBIC), dtype=np.int16)
    grain = rng.integers(-12, 13, smooth.shape, dtype=np.int16)
    Image.fromarray(np.clip(smooth + grain, 0, 255).astype(np.uint8)).save(path, quality=90)


def make_images(folder: Path, count: int, size: int) -> None:
    for sub in range(4):
        (folder / f"part{sub}").mkdir(parents=True, exist_ok=True)
    jobs = [(folder / f"part{i % 4}" / f"{i:06d}.jpg", i, size) for i in range(count)]
    with multiprocessing.get_context("fork").Pool(min(16, os.cpu_count() or 1)) as pool:
        pool.map(_write_jpeg, jobs, chunksize=16)


def _sync_time(fn, device) -> float:
    torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    torch.cuda.synchronize(device)
    return time.perf_counter() - start


def ceiling(vae, images: int, batch_size: int, size: int, encodes: int, autotune: bool) -> float:
    """(a) images/s of the VAE alone: the same batches, already on the GPU, ``encodes`` encodes per image."""
    device = vae.device
    generator = torch.Generator(device).manual_seed(0)
    batches = [
        torch.rand((min(batch_size, images - s), 3, size, size), device=device, generator=generator).mul_(2).sub_(1)
        for s in range(0, images, batch_size)
    ]
    batches = [b.to(vae.dtype) for b in batches]

    def encode_all():
        for batch in batches:
            for _ in range(encodes):
                vae.encode(batch)

    with torch.backends.cudnn.flags(enabled=True, benchmark=autotune, deterministic=not autotune):
        encode_all()  # warm-up: cuDNN plans (and autotuning) for every batch shape
        seconds = min(_sync_time(encode_all, device) for _ in range(2))
    return images / seconds


class _StandardDataset(torch.utils.data.Dataset):
    """(c) per sample on the CPU: Pillow decode, a Pillow ImageDraw mask, the seed node's masking, ``2p - 1``.

    The mask shapes of every sample are drawn once, up front (vectorized on the CPU); the workers draw
    each sample's mask with Pillow."""

    def __init__(self, paths, ids, family, size, grow, keep_original):
        self.paths, self.ids, self.family, self.size = paths, ids, family, size
        self.grow, self.keep_original = grow, keep_original
        self.params = batch_params(ids, family, size, len(ids))  # the whole list's draw at once: ~20 us per id

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        pixels = torch.from_numpy(np.array(decode_image(self.paths[index], self.size))).float().div_(255.0)[None]
        mask = pil_mask(*masks_module.shapes(self.params, index)[1:], self.size)
        mask = torch.from_numpy(np.array(mask)).float().div_(255.0)[None]
        filled, noise_mask = reference.vae_encode_for_inpaint(pixels, mask, self.grow)
        out = {"masked": reference.vae_input(filled)[0].contiguous(), "noise_mask": noise_mask[0]}
        if self.keep_original:
            out["original"] = reference.vae_input(pixels)[0].contiguous()
        return out


def standard_way(vae, sources, family, size, batch_size, workers, grow, keep_original) -> float:
    """(c) images/s of the common recipe: everything but the encode in DataLoader workers, then ``vae.encode``."""
    dataset = _StandardDataset(sources.images, sources.ids, family, size, grow, keep_original)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, num_workers=workers, pin_memory=True, prefetch_factor=2
    )
    device = vae.device
    start = time.perf_counter()
    count = 0
    with torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True):
        for batch in loader:
            vae.encode(batch["masked"].to(device, non_blocking=True).to(vae.dtype))
            if keep_original:
                vae.encode(batch["original"].to(device, non_blocking=True).to(vae.dtype))
            batch["noise_mask"].to(device, non_blocking=True)
            count += batch["masked"].shape[0]
        torch.cuda.synchronize(device)
    return count / (time.perf_counter() - start)


def pil_mask(segments: list, boxes: list, keep: tuple, size: int) -> np.ndarray:
    """Shapes of :class:`MaskParams` units drawn with Pillow ImageDraw (the usual CPU way: cv2/PIL lines).

    Round caps and joints are ellipses at the vertices; Pillow decides boundary pixels its own way,
    so a few boundary pixels of a stroke differ from the exact capsules (bounded in tests).
    """
    from PIL import Image, ImageDraw

    image = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(image)
    for ax, ay, bx, by, width in segments:  # half-pixel units: pixel i at 2i + 1, radius ``width`` = width/2 px
        a, b, r = ((ax - 1) / 2, (ay - 1) / 2), ((bx - 1) / 2, (by - 1) / 2), width / 2
        draw.line([a, b], fill=255, width=width)
        for x, y in (a, b):  # round caps and joints
            draw.ellipse([x - r, y - r, x + r, y + r], fill=255)
    for x0, y0, x1, y1 in boxes:
        draw.rectangle([x0, y0, x1 - 1, y1 - 1], fill=255)
    x0, y0, x1, y1 = keep
    if (x0, y0, x1, y1) != (0, 0, size, size):
        outside = Image.new("L", (size, size), 255)
        ImageDraw.Draw(outside).rectangle([x0, y0, x1 - 1, y1 - 1], fill=0)
        image.paste(255, mask=outside)
    return np.asarray(image)


def cpu_masks(sample_ids: list[str], family: MaskFamily, size: int) -> list[np.ndarray]:
    """The CPU generator of the same family: the batch's vectorized draw on CPU tensors, then Pillow per mask."""
    params = batch_params(sample_ids, family, size, len(sample_ids))
    return [pil_mask(*masks_module.shapes(params, row)[1:], size) for row in range(len(sample_ids))]


def mask_speed(ids: list[str], family: MaskFamily, size: int, batch_size: int, device) -> dict:
    """(d) microseconds per image, batches of ``batch_size``: the GPU generator (ids -> masks on the GPU:
    host keys, the draw kernel, the rasterizer kernel, synchronized) vs the CPU one (the same draw on
    CPU tensors + Pillow ImageDraw of exactly those shapes, one core). Also each GPU part alone."""
    batches = [ids[s : s + batch_size] for s in range(0, len(ids), batch_size)]
    images = sum(len(b) for b in batches)
    keys = [masks_module.sample_keys(b, family.seed).to(device) for b in batches]
    params = [draw_params(k, family, size) for k in keys]  # also builds both kernels

    def each(fn, items):
        def run_all():
            for item in items:
                fn(item)  # each result dropped at once: the allocator reuses its memory

        return run_all

    gpu_all = each(lambda b: masks_for(b, family, size, device), batches)
    gpu_us = min(_sync_time(gpu_all, device) for _ in range(3))
    draw_us = min(_sync_time(each(lambda k: draw_params(k, family, size), keys), device) for _ in range(3))
    raster_us = min(_sync_time(each(lambda p: rasterize(p, size), params), device) for _ in range(3))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one CPU core, as Pillow
    try:
        sample = batches[: max(1, 256 // batch_size)]
        count = sum(len(b) for b in sample)
        start = time.perf_counter()
        drawn = [batch_params(b, family, size, len(b)) for b in sample]
        cpu_draw_us = (time.perf_counter() - start) / count * 1e6
        start = time.perf_counter()
        for p in drawn:
            for row in range(p.kinds.shape[0]):
                pil_mask(*masks_module.shapes(p, row)[1:], size)
        pil_us = (time.perf_counter() - start) / count * 1e6
    finally:
        torch.set_num_threads(threads)
    coverage = statistics.fmean(float(rasterize(p, size).mean()) for p in params[:4])
    cpu_us = cpu_draw_us + pil_us
    per_image = 1e6 / images
    return {
        "batch_size": batch_size,
        "gpu_us_per_image": gpu_us * per_image,
        "gpu_draw_us_per_image": draw_us * per_image,
        "gpu_raster_us_per_image": raster_us * per_image,
        "cpu_us_per_image": cpu_us,
        "cpu_params_us_per_image": cpu_draw_us,
        "pil_us_per_image": pil_us,
        "speedup": cpu_us / (gpu_us * per_image),
        "mean_coverage": coverage,
    }


def print_masks(m: dict) -> None:
    print(
        f"(d) masks: GPU {m['gpu_us_per_image']:.1f} us/img (draw {m['gpu_draw_us_per_image']:.1f},"
        f" raster {m['gpu_raster_us_per_image']:.1f}), CPU {m['cpu_us_per_image']:.1f} us/img"
        f" (draw {m['cpu_params_us_per_image']:.1f} + Pillow {m['pil_us_per_image']:.1f}) -> {m['speedup']:.1f}x"
    )


def write_json(result: dict, path: Path | None) -> None:
    """Write ``result`` to ``path`` (folders made) and say so; nothing without a path."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1))
    print(f"wrote {path}")


def torchrun_check(work: Path, nproc: int, config: dict) -> dict:
    """The same run under ``torchrun --nproc-per-node nproc`` (a fresh DIR): equal shards? how long?

    Each rank gets its own GPU and the same ``--workers`` as the one-process run: the 2-GPU run of
    b70cb699c6, with the workers split between the ranks (6 each), measured 87.9 images/s against
    88.3 for one process, which is what 12 decoding workers delivered in both; whether decoding or
    something shared bounds it is what the next run on two GPUs has to show (issue #16).
    Its time includes process start-up and each rank's load of the Triton kernels (from Triton's
    cache after the first run): measure with enough images (thousands) for scaling.
    """
    out = work / f"out-torchrun{nproc}"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
        "-m", "inpaint_fused", "precompute", str(work / "src"), "--vae", str(config["vae"]), "--out", str(out),
        "--size", str(config["size"]), "--batch-size", str(config["batch_size"]),
        "--shard-size", str(config["shard_size"]), "--workers", str(config["workers"]),
        "--grow", str(config["grow"]), "--no-progress", *(["--keep-original"] if config["keep_original"] else []),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=400)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        return {"nproc": nproc, "error": done.stderr[-2000:]}
    names = sorted(p.name for p in (work / "out").glob("shard-*.safetensors"))
    equal = names == sorted(p.name for p in out.glob("shard-*.safetensors")) and all(
        (work / "out" / name).read_bytes() == (out / name).read_bytes() for name in names
    )
    rate = re.search(r"time\s+([\d.]+) s, ([\d.]+) images/s", done.stdout)
    return {
        "nproc": nproc,
        "shards_equal_to_one_process": equal,
        "shards": len(names),
        "seconds": float(rate.group(1)) if rate else None,
        "img_s": float(rate.group(2)) if rate else None,
        "wall_s_with_startup": wall,
    }


def measure(
    images: int, size: int, batch_size: int, workers: int, keep_original: bool, grow: int = 6, nproc: int = 0
) -> dict:
    device = torch.device("cuda")
    from diffusers import AutoencoderKL

    work = Path(tempfile.mkdtemp(prefix="precompute-bench-"))
    try:
        started = time.perf_counter()
        make_images(work / "src", images, size)
        torch.manual_seed(0)
        AutoencoderKL(**SD_VAE).save_pretrained(work / "vae")
        setup_s = time.perf_counter() - started
        vae = load_vae(work / "vae", device)
        encodes = 2 if keep_original else 1
        family = MaskFamily()
        config = dict(
            vae=work / "vae", size=size, batch_size=batch_size, shard_size=8 * batch_size, workers=workers,
            keep_original=keep_original, grow=grow, progress=False,
        )  # fmt: skip
        # Warm-up run (Triton kernel builds, cuDNN plans, worker start-up paths), then the timed run.
        run(PrecomputeConfig(source=work / "src", out=work / "warm", max_shards=1, **config))
        summary = run(PrecomputeConfig(source=work / "src", out=work / "out", **config))
        pipeline = summary.images_per_s
        a = ceiling(vae.vae, images, batch_size, size, encodes, autotune=False)
        a_tuned = ceiling(vae.vae, images, batch_size, size, encodes, autotune=True)
        sources = list_sources(work / "src")
        standard = standard_way(vae.vae, sources, family, size, batch_size, workers, grow, keep_original)
        masks = mask_speed(sources.ids, family, size, 64, device)
        shard_bytes = sum(p.stat().st_size for p in (work / "out").glob("shard-*.safetensors"))
        multi = torchrun_check(work, nproc, config) if nproc > 1 else None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    env = benchmarking.environment(device)
    import diffusers

    env["diffusers"] = diffusers.__version__
    return {
        "kind": "precompute",
        "environment": env,
        "config": {
            "images": images,
            "size": size,
            "batch_size": batch_size,
            "workers": workers,
            "keep_original": keep_original,
            "grow": grow,
            "vae": "SD AutoencoderKL, random weights, bf16",
            "mask_family": family.settings(),
            "setup_s": round(setup_s, 1),
        },  # fmt: skip
        "results": {
            "vae_ceiling_img_s": a,
            "vae_ceiling_autotuned_img_s": a_tuned,
            "pipeline_img_s": pipeline,
            "pipeline_fraction_of_ceiling": pipeline / a,
            "pipeline_seconds": summary.seconds,
            "standard_img_s": standard,
            "pipeline_vs_standard": pipeline / standard,
            "shard_mib_per_1k_images": shard_bytes / 2**20 / images * 1000,
            "masks": masks,
            "torchrun": multi,
        },
    }


def _print(result: dict) -> None:
    r = result["results"]
    print(f"GPU {result['environment']['gpu']}, {result['config']['images']} images {result['config']['size']}^2")
    print(
        f"(a) VAE alone          {r['vae_ceiling_img_s']:8.1f} img/s"
        f"  (cuDNN autotuned: {r['vae_ceiling_autotuned_img_s']:.1f})"
    )
    print(
        f"(b) precompute         {r['pipeline_img_s']:8.1f} img/s"
        f"  = {100 * r['pipeline_fraction_of_ceiling']:.1f} % of (a)"
    )
    print(f"(c) standard way       {r['standard_img_s']:8.1f} img/s  -> precompute is {r['pipeline_vs_standard']:.2f}x")
    print_masks(r["masks"])
    if r.get("torchrun"):
        print(f"torchrun {json.dumps(r['torchrun'])}")


@pytest.mark.gpu
def test_precompute_bench(tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    result = measure(images=1024, size=512, batch_size=32, workers=min(12, os.cpu_count() or 1), keep_original=True)
    _print(result)
    out = ROOT / "bench" / "results" / f"precompute-{result['environment']['commit'][:10]}.json"
    out.write_text(json.dumps(result, indent=1))
    assert math.isfinite(result["results"]["pipeline_img_s"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=min(12, os.cpu_count() or 1))
    parser.add_argument("--no-keep-original", action="store_true", help="encode the masked image only")
    parser.add_argument("--json", type=Path, help="write the result here")
    parser.add_argument(
        "--torchrun", type=int, default=0, metavar="N", help="also run under torchrun with N GPUs; compare shards"
    )
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench_precompute: needs a CUDA device", file=sys.stderr)
        return 2
    if args.torchrun > torch.cuda.device_count():
        print(f"bench_precompute: --torchrun {args.torchrun} needs as many GPUs", file=sys.stderr)
        return 2
    result = measure(
        args.images, args.size, args.batch_size, args.workers, not args.no_keep_original, nproc=args.torchrun
    )
    _print(result)
    write_json(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
