"""``inpaint-fused demo``: the preprocessing on a picture and a mask, timed, checked and previewed."""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F

from .. import benchmarking, reference
from ..api import prepare_inpaint, prepare_inpaint_was
from .common import CLIError, add_device_option, resolve_device
from .pictures import SAMPLE_IMAGE, SAMPLE_MASK, load_image, load_mask, make_preview


def _median_ms(fn, device: torch.device, budget_s: float = 0.3) -> float:
    return statistics.median(benchmarking.time_fn(fn, device, budget_s))


def _gpu_comparison(megapixels: float, op: str, value: int) -> Optional[tuple[float, str, bool]]:
    """What the GPU reference shipped with the package says about a call like this one.

    Returns a GPU time, a phrase naming the measured case it comes from (and its value when no case
    of ``value`` was measured), and whether that time only bounds this picture's from above: a case
    larger than the picture is kept as measured (small calls are launch-bound, so a time scaled
    down would flatter the GPU); a smaller one is scaled up by megapixels (large calls are
    bandwidth-bound).
    """
    summary = benchmarking.load_demo_summary()
    row = benchmarking.nearest_fused(summary["rows"], megapixels, op, value) if summary else None
    if row is None:
        return None
    name = "mask_offset" if op == "was" else "grow_mask_by"
    case = f"{row['id']} ({row['megapixels']:.2g} MP"
    case += f", {name}={row['value']}: no {name}={value} case was measured)" if row["value"] != value else ")"
    where = f"{benchmarking.format_time(row['median_ms'])} for {case} on {summary.get('gpu')}"
    ms, size_ratio = row["median_ms"], megapixels / row["megapixels"]
    if size_ratio > 1.25:
        ms *= size_ratio
        where += f", {benchmarking.format_time(ms)} scaled by megapixels to this picture"
    return ms, where, size_ratio < 0.8


def _compare(
    out, seed: tuple[torch.Tensor, torch.Tensor], mask: torch.Tensor, height: int, width: int, reach: int
) -> str:
    """How the fused result compares with the original code's on the same device.

    The contract (docs/contract.md) lets a pixel whose bilinear mask lies within 1e-6 of 0.5 round either way; such a
    flip changes the result only within the box (``reach`` pixels) around it.
    """
    noise = out.noise_mask.cpu() != seed[1].to(torch.float32).cpu()
    image = (out.pixels.cpu() != seed[0].cpu()).any(-1)
    if not noise.any() and not image.any():
        return "identical to the original code: noise mask and pixels bit for bit"
    x, y = noise.shape[-2:]
    off_h, off_w = height % 8 // 2, width % 8 // 2
    bilinear = F.interpolate(mask[:, None].to(torch.float32), size=(height, width), mode="bilinear")
    ties = ((bilinear[..., off_h : off_h + x, off_w : off_w + y] - 0.5).abs() < 1e-6).to(torch.float32)
    near = F.max_pool2d(ties, 2 * reach + 1, stride=1, padding=reach) > 0
    differ = int(noise.sum() + image.sum())
    if not (noise & ~near).any() and not (image & ~near[:, 0]).any():
        return (
            f"identical to the original code but for {differ} pixels next to bilinear ties (mask within 1e-6 of 0.5,"
            " which the contract lets round either way)"
        )
    return f"DIFFERS from the original code: {int(noise.sum())} noise-mask pixels, {int(image.sum())} image pixels"


# The original code's CPU time above which the demo does not run it unless asked (--time-original).
ORIGINAL_LIMIT_S = 20.0


def _say(line: str) -> None:
    """A progress line, shown before slow work starts rather than after it ends."""
    print(line, file=sys.stderr, flush=True)


def _duration(seconds: float) -> str:
    return f"{seconds:,.0f} s" if seconds < 120 else f"{seconds / 60:,.0f} min"


def _box(was: bool, value: int) -> str:
    side = 2 * abs(value) + 1 if was else value
    return f"{side}x{side}"


def _equivalent_value(value: int, was: bool, mask_size, image_size) -> int:
    """The smallest growth the original code can run with the same result: a box that already reaches
    past the whole (resized) image from every pixel changes nothing when it grows further."""
    reach = max(*image_size, *mask_size)
    if was:
        return max(-reach, min(reach, value))
    return 2 * reach + 1 if (value - 1) // 2 >= reach else value


def _estimate_original_seconds(seed, pixels: torch.Tensor, mask: torch.Tensor, was: bool, value: int) -> float:
    """Seconds one call of the original code takes on the CPU, from one timed call on a crop.

    Its box convolution costs ``output pixels x box area``; a crop of at most 64x64 pixels with the
    same box is timed and scaled by the number of output pixels.
    """
    side = 2 * abs(value) + 1 if was else max(value, 1)
    if side <= 33:
        return 0.0
    crop_h, crop_w = min(64, pixels.shape[1]), min(64, pixels.shape[2])
    start = time.perf_counter()
    seed(pixels[:, :crop_h, :crop_w], mask[:, : min(64, mask.shape[1]), : min(64, mask.shape[2])])
    elapsed = time.perf_counter() - start
    return elapsed * pixels.shape[1] * pixels.shape[2] / (crop_h * crop_w)


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
    value = args.was_offset if was else (6 if args.grow is None else args.grow)
    label = f"mask_offset={value}" if was else f"grow_mask_by={value}"
    device = resolve_device(args.device)

    def fused(p: torch.Tensor, m: torch.Tensor, v: int = value):
        return (prepare_inpaint_was if was else prepare_inpaint)(p, m, v)

    original_value = _equivalent_value(value, was, mask.shape[1:], pixels.shape[1:3])

    def seed(p: torch.Tensor, m: torch.Tensor):
        encode = reference.was_vae_encode_for_inpaint if was else reference.vae_encode_for_inpaint
        return encode(p, m, original_value)

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
    if original_value != value:
        name = "mask_offset" if was else "grow_mask_by"
        print(
            f"        the box reaches past the whole image: the original code runs with {name}={original_value},"
            " which gives the same result"
        )

    backend = benchmarking.fused_backend(device)
    _say("timing  inpaint-fused ...")
    fused_ms = _median_ms(lambda: fused(p_dev, m_dev), device)
    original_s = _estimate_original_seconds(seed, pixels, mask, was, original_value)
    run_original = args.time_original or original_s <= ORIGINAL_LIMIT_S
    if run_original:
        if original_s > 2:  # one call, timed and kept for the check: a second would double the wait
            _say(f"timing  the original code on the CPU: about {original_s:,.0f} s ...")
            start = time.perf_counter()
            same_cpu = seed(pixels, mask)
            ref_cpu_ms = (time.perf_counter() - start) * 1e3
        else:
            ref_cpu_ms = _median_ms(lambda: seed(pixels, mask), torch.device("cpu"), budget_s=0.3)
            same_cpu = None
        original_cpu = f"original code {benchmarking.format_time(ref_cpu_ms)} on the CPU"
    else:
        ref_cpu_ms = None
        original_cpu = (
            f"original code on the CPU: not run, about {_duration(original_s)} per call for its"
            f" {_box(was, original_value)} box convolution (--time-original runs it)"
        )
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        upload_ms = _median_ms(lambda: fused(pixels.to(device, non_blocking=True), mask.to(device)), device)
        _say("timing  the original code on the GPU ...")
        ref_gpu_ms = _median_ms(lambda: seed(p_dev, m_dev), device)
        same = seed(p_dev, m_dev)
        print(f"device  {name}: Triton kernels")
        print(
            f"time    inpaint-fused {benchmarking.format_time(fused_ms)} on the GPU"
            f" ({benchmarking.format_time(upload_ms)} with the upload of the CPU image)"
        )
        if ref_cpu_ms is None:
            print(f"        {original_cpu}")
        else:
            print(
                f"        {original_cpu}, as a default ComfyUI runs it:"
                f" {ref_cpu_ms / upload_ms:.0f}x slower than inpaint-fused with the upload"
            )
        print(
            f"        original code {benchmarking.format_time(ref_gpu_ms)} on the same GPU (eager):"
            f" {ref_gpu_ms / fused_ms:.1f}x slower"
        )
    else:
        same = (same_cpu if same_cpu is not None else seed(pixels, mask)) if run_original else None
        if backend == "triton-interpreter":
            print("device  CPU under Triton's interpreter (TRITON_INTERPRET=1): the real kernels, very slowly")
        else:
            print(f"device  no CUDA GPU found: the CPU path ({backend}); the Triton kernels need a CUDA GPU")
        print(f"time    inpaint-fused {benchmarking.format_time(fused_ms)} on the CPU ({backend}), {original_cpu}")
        gpu = _gpu_comparison(x * y / 1e6, "was" if was else "core", value)
        if gpu is None:
            print(
                "        how much faster a GPU is: no GPU reference shipped with this package;"
                " `inpaint-fused bench` on a CUDA machine measures it"
            )
        else:
            gpu_ms, where, bound = gpu
            print(
                f"        on a GPU the fused kernels took {where}: this CPU path is"
                f" {'at least' if bound else 'about'} {fused_ms / gpu_ms:,.0f}x slower"
            )
    if same is None:
        print("check   not run: it needs the original code's result (--time-original)")
    else:
        print(f"check   {_compare(out, same, mask, pixels.shape[1], pixels.shape[2], abs(original_value))}")

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
        description="Run the inpaint preprocessing on the best device, time it against the original nodes' code"
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
    # No default here: argparse lets an option equal to its default past the exclusive group.
    group.add_argument(
        "--grow", type=int, metavar="N", help="ComfyUI VAE Encode (for Inpainting) grow_mask_by (default 6)"
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
    add_device_option(d)
    d.add_argument(
        "--time-original",
        action="store_true",
        help=f"time the original code on the CPU even when it would take over {ORIGINAL_LIMIT_S:.0f} s a call",
    )
    d.set_defaults(run=demo)
