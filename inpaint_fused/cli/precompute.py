"""``inpaint-fused precompute``: masked latents of a dataset in resumable shards, one GPU or many (torchrun)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from .common import CLIError, add_device_option

DTYPES = {"auto": None, "bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def _range(kind):
    def parse(text: str):
        low, sep, high = text.partition(":")
        try:
            values = (kind(low), kind(high if sep else low))
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"expected LOW:HIGH or one value, got {text!r}") from error
        return values

    return parse


def _weights(text: str) -> tuple[float, float, float]:
    from ..precompute.masks import KINDS

    weights = dict.fromkeys(KINDS, 0.0)
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if name.strip() not in weights:
            raise argparse.ArgumentTypeError(f"mask kind {name.strip()!r} is not one of {', '.join(KINDS)}")
        try:
            weights[name.strip()] = float(value) if sep else 1.0
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"weight of {name.strip()!r} must be a number, got {value!r}") from error
    return tuple(weights[k] for k in KINDS)


def precompute(args: argparse.Namespace) -> int:
    from ..precompute import MaskFamily, PrecomputeConfig, PrecomputeError, run

    try:
        family = MaskFamily(
            weights=args.mask_kinds,
            stroke_count=args.stroke_count,
            stroke_vertices=args.stroke_vertices,
            stroke_length=args.stroke_length,
            stroke_width=args.stroke_width,
            stroke_turn=args.stroke_turn,
            box_count=args.box_count,
            box_size=args.box_size,
            outpaint_margin=args.outpaint_margin,
            seed=args.seed,
        )
    except ValueError as error:
        raise CLIError(f"mask family: {error}") from error
    config = PrecomputeConfig(
        source=Path(args.src),
        vae=Path(args.vae),
        out=Path(args.out),
        size=args.size,
        batch_size=args.batch_size,
        shard_size=args.shard_size,
        image_column=args.image_column,
        masks_dir=Path(args.masks) if args.masks else None,
        family=family,
        grow=args.grow,
        was_offset=args.was_offset,
        keep_original=args.keep_original,
        full_mask=args.full_mask,
        workers=args.workers,
        device=args.device,
        dtype=DTYPES[args.dtype],
        scaling_factor=args.scaling_factor,
        shift_factor=args.shift_factor,
        progress=not args.no_progress,
        max_shards=args.max_shards,
    )
    try:
        summary = run(config)
    except PrecomputeError as error:
        raise CLIError(str(error)) from error
    if int(os.environ.get("RANK", "0")) == 0:
        print("\n".join(summary.lines()))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser(
        "precompute",
        help="masked latents of a dataset for inpainting training, in resumable shards (torchrun scales out)",
        description="Random (or given) masks, the fused inpaint preparation and the VAE encode of every image of a"
        " folder or Parquet files, into safetensors shards with an index. Resumable; under torchrun each rank"
        " takes every world-th shard. See docs/precompute.md.",
    )
    p.add_argument("src", metavar="SRC", help="a folder of images and/or .parquet files (recursive), or one .parquet")
    p.add_argument("--vae", required=True, help="a diffusers AutoencoderKL folder or an original-format .safetensors")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created; a rerun resumes it)")
    p.add_argument("--size", type=int, default=512, help="square crop side after resizing the shorter side (512)")
    p.add_argument("--batch-size", type=int, default=16, help="images per VAE batch (16)")
    p.add_argument("--shard-size", type=int, default=1000, help="samples planned per shard (1000)")
    p.add_argument("--image-column", default="image", help="Parquet column of image bytes (image)")
    p.add_argument(
        "--masks",
        metavar="DIR",
        help="mask files matched by relative path without extension (white ="
        " repaint); default: random masks drawn on the device",
    )
    group = p.add_mutually_exclusive_group()
    group.add_argument("--grow", type=int, default=6, help="VAE Encode (for Inpainting) grow_mask_by (6)")
    group.add_argument("--was-offset", type=int, help="WAS Inpainting VAE Encode mask_offset instead")
    p.add_argument("--keep-original", action="store_true", help="also store the unmasked image's latent")
    p.add_argument("--full-mask", action="store_true", help="also store the full-resolution noise mask")
    p.add_argument("--workers", type=int, help="decoding processes (default min(8, CPUs))")
    add_device_option(p)
    p.add_argument("--dtype", choices=tuple(DTYPES), default="auto", help="VAE dtype (auto: bf16 on CUDA, fp32 on CPU)")
    p.add_argument("--scaling-factor", type=float, help="latent scale (default: the folder's config)")
    p.add_argument("--shift-factor", type=float, help="latent shift, subtracted before scaling (SD3, Flux)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--max-shards", type=int, help="stop after this many shards per rank (resume later)")
    m = p.add_argument_group("random masks (docs/precompute.md)")
    m.add_argument("--seed", type=int, default=0, help="mask seed; a sample's mask depends on it and its id (0)")
    m.add_argument(
        "--mask-kinds",
        type=_weights,
        default=(0.5, 0.3, 0.2),
        help="weights, e.g. strokes=0.5,boxes=0.3,outpaint=0.2 (the default)",
    )
    m.add_argument("--stroke-count", type=_range(int), default=(1, 4), metavar="LO:HI", help="strokes (1:4)")
    m.add_argument("--stroke-vertices", type=_range(int), default=(2, 6), metavar="LO:HI", help="per stroke (2:6)")
    m.add_argument(
        "--stroke-length",
        type=_range(float),
        default=(0.05, 0.3),
        metavar="LO:HI",
        help="segment length, fraction of size (0.05:0.3)",
    )
    m.add_argument(
        "--stroke-width",
        type=_range(float),
        default=(0.02, 0.12),
        metavar="LO:HI",
        help="stroke width, fraction of size (0.02:0.12)",
    )
    m.add_argument("--stroke-turn", type=float, default=120.0, help="max turn at a vertex, degrees (120)")
    m.add_argument("--box-count", type=_range(int), default=(1, 3), metavar="LO:HI", help="boxes (1:3)")
    m.add_argument(
        "--box-size",
        type=_range(float),
        default=(0.1, 0.5),
        metavar="LO:HI",
        help="box side, fraction of size (0.1:0.5)",
    )
    m.add_argument(
        "--outpaint-margin",
        type=_range(float),
        default=(0.1, 0.4),
        metavar="LO:HI",
        help="masked border depth per side, fraction of size (0.1:0.4)",
    )
    p.set_defaults(run=precompute)
