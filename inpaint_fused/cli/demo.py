"""``inpaint-fused demo``: the preprocessing on a picture and a mask, timed, checked and previewed."""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F

from .. import benchmark, reference
from ..api import prepare_inpaint, prepare_inpaint_was
from .common import CLIError, resolve_device
from .pictures import SAMPLE_IMAGE, SAMPLE_MASK, load_image, load_mask, make_preview

# Largest box (pixels a side) the demo runs the seed code's convolution for on the CPU without --seed-code.
SEED_WINDOW_LIMIT = 15


def _median_ms(fn, device: torch.device, budget_s: float = 0.3) -> float:
    return statistics.median(benchmark.time_fn(fn, device, budget_s))


def _gpu_comparison(megapixels: float, op: str) -> Optional[tuple[float, str]]:
    """What the newest GPU results file in the checkout's ``bench/results`` says about this size."""
    results = Path(benchmark._repo_root(), "bench", "results")
    best = None
    for path in sorted(results.glob("*.json")) if results.is_dir() else []:
        try:
            meta, records = benchmark.load_results([path])
        except (OSError, ValueError):
            continue
        if meta.get("device") != "cuda":
            continue
        rec = benchmark.nearest_fused(records, megapixels, op)
        if rec is not None and (best is None or meta.get("created", "") > best[0].get("created", "")):
            best = (meta, rec, path)
    if best is None:
        return None
    meta, rec, path = best
    where = f"{benchmark.format_time(rec['median_ms'])} for {rec['id']} on {meta.get('gpu')} ({path.name})"
    return rec["median_ms"], where


def _compare(
    out, seed: tuple[torch.Tensor, torch.Tensor], mask: torch.Tensor, height: int, width: int, reach: int
) -> str:
    """How the fused result compares with the seed code's on the same device.

    The SPEC lets a pixel whose bilinear mask lies within 1e-6 of 0.5 round either way; such a
    flip changes the result only within the box (``reach`` pixels) around it.
    """
    noise = out.noise_mask.cpu() != seed[1].to(torch.float32).cpu()
    image = (out.pixels.cpu() != seed[0].cpu()).any(-1)
    if not noise.any() and not image.any():
        return "identical to the seed code: noise mask and pixels bit for bit"
    x, y = noise.shape[-2:]
    off_h, off_w = height % 8 // 2, width % 8 // 2
    bilinear = F.interpolate(mask[:, None].to(torch.float32), size=(height, width), mode="bilinear")
    ties = ((bilinear[..., off_h : off_h + x, off_w : off_w + y] - 0.5).abs() < 1e-6).to(torch.float32)
    near = F.max_pool2d(ties, 2 * reach + 1, stride=1, padding=reach) > 0
    differ = int(noise.sum() + image.sum())
    if not (noise & ~near).any() and not (image & ~near[:, 0]).any():
        return (
            f"identical to the seed code but for {differ} pixels next to bilinear ties (mask within 1e-6 of 0.5,"
            " which the SPEC lets round either way)"
        )
    return f"DIFFERS from the seed code: {int(noise.sum())} noise-mask pixels, {int(image.sum())} image pixels"


def demo(args: argparse.Namespace) -> int:
    output = Path(args.output)
    if not output.parent.is_dir():
        raise CLIError(f"-o: directory {output.parent} does not exist")
    image_path = Path(args.image) if args.image else SAMPLE_IMAGE
    pixels, alpha, image_desc = load_image(image_path)
    if args.mask:
        mask, mask_desc = load_mask(Path(args.mask))
    elif alpha is not None:
        mask, mask_desc = alpha.unsqueeze(0), "the image's alpha (transparent = repaint)"
    else:
        mask, mask_desc = load_mask(SAMPLE_MASK)
        mask_desc += ", bundled sample"
    if not args.image:
        image_desc += ", bundled sample"
    was = args.was_offset is not None
    value = args.was_offset if was else args.grow
    label = f"mask_offset={value}" if was else f"grow_mask_by={value}"
    device = resolve_device(args.device)

    def fused(p: torch.Tensor, m: torch.Tensor, v: int = value):
        return (prepare_inpaint_was if was else prepare_inpaint)(p, m, v)

    def seed(p: torch.Tensor, m: torch.Tensor):
        return (reference.was_vae_encode_for_inpaint if was else reference.vae_encode_for_inpaint)(p, m, value)

    try:
        p_dev, m_dev = pixels.to(device), mask.to(device)
        out = fused(p_dev, m_dev)
    except (TypeError, ValueError) as error:
        raise CLIError(str(error)) from error
    x, y = out.noise_mask.shape[-2:]
    print(f"image   {image_desc}")
    print(f"mask    {mask_desc}; {100 * float(mask.round().mean()):.1f} % to repaint")
    node = "WAS Inpainting VAE Encode" if was else "VAE Encode (for Inpainting)"
    print(f"op      {node}, {label}: VAE input and noise mask {y}x{x}")

    backend = benchmark.fused_backend(device)
    fused_ms = _median_ms(lambda: fused(p_dev, m_dev), device)
    # The seed's box is a convolution: its cost grows with the window's area (minutes at +-128 on a CPU).
    window = 2 * abs(value) + 1 if was else value
    run_seed_cpu = args.seed_code or window <= SEED_WINDOW_LIMIT
    ref_cpu_ms = _median_ms(lambda: seed(pixels, mask), torch.device("cpu")) if run_seed_cpu else None
    seed_cpu = (
        f"seed code {benchmark.format_time(ref_cpu_ms)} on the CPU"
        if run_seed_cpu
        else f"seed code not run on the CPU: its {window}x{window} convolution is slow there (--seed-code runs it)"
    )
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        upload_ms = _median_ms(lambda: fused(pixels.to(device, non_blocking=True), mask.to(device)), device)
        ref_gpu_ms = _median_ms(lambda: seed(p_dev, m_dev), device)
        same = seed(p_dev, m_dev)
        print(f"device  {name}: Triton kernels")
        print(
            f"time    inpaint-fused {benchmark.format_time(fused_ms)} on the GPU"
            f" ({benchmark.format_time(upload_ms)} with the upload of the CPU image)"
        )
        if run_seed_cpu:
            print(
                f"        seed code {benchmark.format_time(ref_cpu_ms)} on the CPU, as a default ComfyUI runs it:"
                f" {ref_cpu_ms / upload_ms:.0f}x slower than inpaint-fused with the upload"
            )
        else:
            print(f"        {seed_cpu}")
        print(
            f"        seed code {benchmark.format_time(ref_gpu_ms)} on the same GPU (eager):"
            f" {ref_gpu_ms / fused_ms:.1f}x slower"
        )
    else:
        same = seed(pixels, mask) if run_seed_cpu else None
        if backend == "triton-interpreter":
            print("device  CPU under Triton's interpreter (TRITON_INTERPRET=1): the real kernels, very slowly")
        else:
            print(
                "device  no CUDA GPU found: falling back to the pure-torch path, same results"
                " (the Triton kernels need a CUDA GPU)"
            )
        print(f"time    inpaint-fused {benchmark.format_time(fused_ms)} on the CPU ({backend}), {seed_cpu}")
        gpu = _gpu_comparison(x * y / 1e6, "was" if was else "core")
        if gpu is None:
            print(
                "        how much faster a GPU is: no GPU results in bench/results/ here;"
                " `inpaint-fused bench` on a CUDA machine measures it"
            )
        else:
            gpu_ms, where = gpu
            print(
                f"        on a GPU the fused kernels took {where}: this CPU path is about"
                f" {fused_ms / gpu_ms:,.0f}x slower"
            )
    if same is None:
        print("check   skipped with the seed code (tests/test_torch_path.py compares this path with it bit for bit)")
    else:
        print(f"check   {_compare(out, same, mask, pixels.shape[1], pixels.shape[2], abs(value))}")

    rounded = prepare_inpaint(p_dev, m_dev, 0).noise_mask  # the resized, cropped, rounded mask itself
    off_h, off_w = pixels.shape[1] % 8 // 2, pixels.shape[2] % 8 // 2
    original = pixels[0, off_h : off_h + x, off_w : off_w + y]
    preview = make_preview(
        original, rounded[0, 0].cpu(), out.pixels[0, ..., :3].cpu().float(), out.noise_mask[0, 0].cpu(), label
    )
    try:
        preview.save(output)
    except (OSError, ValueError) as error:
        raise CLIError(f"-o: cannot write {output} ({error})") from error
    print(
        f"preview {output} ({preview.size[0]}x{preview.size[1]}): input + mask outline | what the VAE sees | noise mask"
    )
    return 0


def add_parser(sub) -> None:
    d = sub.add_parser(
        "demo",
        help="run the preprocessing on a picture and write a preview",
        description="Run the inpaint preprocessing on the best device, time it against the seed code"
        " and write a preview: the input with the mask outline, what the VAE sees, the noise mask.",
    )
    d.add_argument("--image", metavar="PNG", help="picture to inpaint (default: a bundled sample)")
    d.add_argument(
        "--mask",
        metavar="PNG",
        help="mask: a PNG's alpha (transparent = repaint) or its gray levels (white = repaint); any size."
        " Default: the image's alpha, else a bundled sample mask",
    )
    group = d.add_mutually_exclusive_group()
    group.add_argument(
        "--grow", type=int, default=6, metavar="N", help="ComfyUI VAE Encode (for Inpainting) grow_mask_by (default 6)"
    )
    group.add_argument(
        "--was-offset", type=int, metavar="N", help="WAS Inpainting VAE Encode mask_offset instead (negative erodes)"
    )
    d.add_argument(
        "-o",
        "--output",
        default="inpaint-preview.png",
        metavar="PNG",
        help="preview to write (default inpaint-preview.png)",
    )
    d.add_argument(
        "--seed-code",
        action="store_true",
        help=f"time and check against the seed code on the CPU even for boxes wider than {SEED_WINDOW_LIMIT} px"
        " (its convolution takes seconds to minutes there)",
    )
    d.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto", help="default: CUDA if available")
    d.set_defaults(run=demo)
