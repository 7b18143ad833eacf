"""The ``inpaint-fused`` command (also ``python -m inpaint_fused``): ``demo``, ``bench`` and ``report``.

``demo`` runs the preprocessing on a picture and a mask (a bundled sample by default), prints its
time next to the seed code's and writes a preview; ``bench`` runs the benchmark matrix of
:mod:`inpaint_fused.benchmark`; ``report`` turns results files into tables, plots and the README block.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import torch
import torch.nn.functional as F

from . import benchmark, reference
from .api import prepare_inpaint, prepare_inpaint_was

DATA = Path(__file__).resolve().parent / "data"
SAMPLE_IMAGE = DATA / "sample.png"
SAMPLE_MASK = DATA / "sample_mask.png"

PANEL_MAX = 640
MARGIN = 8
HEADER = 24
BACKGROUND = (28, 28, 30)
OUTLINE = (255, 214, 0)
NOISE = (236, 48, 112)


class CLIError(Exception):
    """A problem with the command's input, shown to the user as ``inpaint-fused: error: ...``."""


# ---------------------------------------------------------------------------------------------
# Pictures in and out


def _open(path: Path, flag: str):
    from PIL import Image, UnidentifiedImageError

    if not path.exists():
        raise CLIError(f"{flag}: no such file: {path}")
    if not path.is_file():
        raise CLIError(f"{flag}: not a file: {path}")
    try:
        image = Image.open(path)
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise CLIError(f"{flag}: cannot read {path} as an image ({type(error).__name__}: {error})") from error
    return image


def _to_tensor(image) -> torch.Tensor:
    """A Pillow image as float32 ``(H, W, C)`` in [0, 1], without numpy."""
    width, height = image.size
    if image.mode in ("I", "I;16", "I;16B", "I;16L"):
        data = torch.frombuffer(bytearray(image.convert("I").tobytes("raw", "I")), dtype=torch.int32)
        return (data.to(torch.float32) / 65535.0).clamp(0, 1).view(height, width, 1)
    if image.mode == "F":
        data = torch.frombuffer(bytearray(image.tobytes("raw", "F")), dtype=torch.float32)
        return data.clamp(0, 1).view(height, width, 1)
    channels = len(image.getbands())
    data = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
    return data.view(height, width, channels).to(torch.float32) / 255.0


def _has_transparency(image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info


def _alpha_mask(image) -> Optional[torch.Tensor]:
    """``1 - alpha`` (ComfyUI's LoadImage: transparent means repaint) when the alpha is not all opaque."""
    if not _has_transparency(image):
        return None
    alpha = image.convert("RGBA").getchannel("A")
    if alpha.getextrema() == (255, 255):
        return None
    return 1.0 - _to_tensor(alpha)[..., 0]


def load_image(path: Path, flag: str = "--image") -> tuple[torch.Tensor, Optional[torch.Tensor], str]:
    """An IMAGE ``(1, H, W, 3)`` float32, the mask its alpha gives (or None), and a description."""
    from PIL import ImageOps

    image = _open(path, flag)
    image = ImageOps.exif_transpose(image) or image
    alpha = _alpha_mask(image)
    pixels = _to_tensor(image.convert("RGB")).unsqueeze(0)
    return pixels, alpha, f"{path.name} {image.size[0]}x{image.size[1]} {image.mode}"


def load_mask(path: Path, flag: str = "--mask") -> tuple[torch.Tensor, str]:
    """A MASK ``(1, h, w)`` from a PNG: its alpha if it has a non-opaque one (transparent = repaint),
    else its gray levels (white = repaint)."""
    image = _open(path, flag)
    mask = _alpha_mask(image)
    how = "alpha, transparent = repaint"
    if mask is None:
        mask = _to_tensor(image if image.mode in ("I", "I;16", "I;16B", "I;16L", "F") else image.convert("L"))[..., 0]
        how = "gray levels, white = repaint"
    return mask.unsqueeze(0), f"{path.name} {image.size[0]}x{image.size[1]} {image.mode} ({how})"


def preview_size(height: int, width: int) -> tuple[int, int]:
    """``(width, height)`` of the preview for outputs of ``height x width``: three panels, scaled to
    at most ``PANEL_MAX`` on their long side, with margins and a caption strip."""
    scale = min(1.0, PANEL_MAX / max(height, width))
    pw, ph = max(1, round(width * scale)), max(1, round(height * scale))
    return 3 * pw + 4 * MARGIN, ph + HEADER + 2 * MARGIN


def _outline(mask: torch.Tensor, thickness: int) -> torch.Tensor:
    """Pixels of ``mask`` (bool ``(h, w)``) within ``thickness`` of an unmasked pixel."""
    outside = (~mask).to(torch.float32)[None, None]
    near = F.max_pool2d(outside, 2 * thickness + 1, stride=1, padding=thickness)[0, 0] > 0
    return mask & near


def _image(tensor: torch.Tensor):
    """A float ``(h, w, 3)`` tensor in [0, 1] as a Pillow RGB image."""
    from PIL import Image

    data = (tensor.clamp(0, 1) * 255).round().to(torch.uint8).contiguous()
    return Image.frombytes("RGB", (data.shape[1], data.shape[0]), ctypes.string_at(data.data_ptr(), data.numel()))


def make_preview(
    original: torch.Tensor, rounded: torch.Tensor, vae_view: torch.Tensor, noise: torch.Tensor, grow_label: str
):
    """Input with the mask outline | what the VAE sees | the noise mask over the input, captioned.

    ``original`` and ``vae_view`` are ``(x, y, 3)`` in [0, 1], ``rounded`` and ``noise`` ``(x, y)`` 0/1,
    all at the output (cropped) size.
    """
    from PIL import Image, ImageDraw, ImageFont

    width, height = preview_size(*rounded.shape)
    pw, ph = (width - 4 * MARGIN) // 3, height - HEADER - 2 * MARGIN

    def fit(t: torch.Tensor, mode: str) -> torch.Tensor:
        return F.interpolate(t.movedim(-1, 0)[None], size=(ph, pw), mode=mode)[0].movedim(0, -1)

    base = fit(original, "bilinear")
    mask = fit(rounded[..., None], "nearest")[..., 0] > 0.5
    grown = fit(noise[..., None], "nearest")[..., 0] > 0.5
    thickness = max(1, round(max(ph, pw) / 300))
    color = torch.tensor(OUTLINE, dtype=torch.float32) / 255
    tint = torch.tensor(NOISE, dtype=torch.float32) / 255

    outlined = torch.where(_outline(mask, thickness)[..., None], color, base)
    overlaid = torch.where(grown[..., None], 0.45 * base + 0.55 * tint, base)
    overlaid = torch.where(_outline(grown, thickness)[..., None], tint, overlaid)
    panels = [
        (outlined, "input + mask outline"),
        (fit(vae_view, "bilinear"), "what the VAE sees (gray fill)"),
        (overlaid, f"noise mask ({grow_label})"),
    ]
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    try:
        font = ImageFont.load_default(size=14)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        font = ImageFont.load_default()
    for i, (panel, caption) in enumerate(panels):
        left = MARGIN + i * (pw + MARGIN)
        canvas.paste(_image(panel), (left, MARGIN + HEADER))
        draw.text((left, MARGIN + 3), caption, fill=(235, 235, 235), font=font)
    return canvas


# ---------------------------------------------------------------------------------------------
# demo


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise CLIError(f"--device cuda: no CUDA GPU is available to this torch ({torch.__version__})")
    return torch.device(name)


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
    device = _resolve_device(args.device)

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
    ref_cpu_ms = _median_ms(lambda: seed(pixels, mask), torch.device("cpu"))
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
        print(
            f"        seed code {benchmark.format_time(ref_cpu_ms)} on the CPU, as a default ComfyUI runs it:"
            f" {ref_cpu_ms / upload_ms:.0f}x slower than inpaint-fused with the upload"
        )
        print(
            f"        seed code {benchmark.format_time(ref_gpu_ms)} on the same GPU (eager):"
            f" {ref_gpu_ms / fused_ms:.1f}x slower"
        )
    else:
        same = seed(pixels, mask)
        if backend == "triton-interpreter":
            print("device  CPU under Triton's interpreter (TRITON_INTERPRET=1): the real kernels, very slowly")
        else:
            print(
                "device  no CUDA GPU found: falling back to the CPU reference path (the Triton kernels need a CUDA GPU)"
            )
        print(
            f"time    inpaint-fused {benchmark.format_time(fused_ms)} on the CPU ({backend}),"
            f" seed code {benchmark.format_time(ref_cpu_ms)} on the CPU"
        )
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


# ---------------------------------------------------------------------------------------------
# bench and report


def _providers(text: Optional[str]) -> Optional[list[str]]:
    if not text:
        return None
    names = [p.strip() for p in text.split(",") if p.strip()]
    unknown = [p for p in names if p not in benchmark.PROVIDERS]
    if unknown:
        raise CLIError(f"--providers: unknown {', '.join(unknown)}; choose from {', '.join(benchmark.PROVIDERS)}")
    return names


def _plot(meta: dict[str, Any], records: list[dict[str, Any]], path: str) -> None:
    try:
        benchmark.plot(meta, records, Path(path))
    except (benchmark.PlotUnavailable, ValueError) as error:
        raise CLIError(f"--plot: {error}") from error
    print(f"plot    {path}")


def bench(args: argparse.Namespace) -> int:
    device = _resolve_device(args.device)
    providers = _providers(args.providers)
    tiers = ("quick",) if args.quick else ("quick", "cpu", "gpu") if device.type == "cuda" else ("quick", "cpu")
    try:
        cases = benchmark.select_cases(args.case or (), tiers)
    except ValueError as error:
        raise CLIError(f"--case: {error}") from error
    if device.type != "cuda":
        left_out = 0 if args.case else sum(c.tier not in tiers for c in benchmark.default_cases())
        which = "larger (--quick)" if args.quick else "GPU-sized"
        print(
            f"No CUDA GPU: benchmarking on the CPU ({benchmark.available_cpus()} threads). The fused provider runs"
            f" {benchmark.fused_backend(device)}; {left_out} {which} cases are left out.",
            file=sys.stderr,
        )
    runner = benchmark.Runner(
        device,
        budget_s=args.budget if args.budget is not None else benchmark.default_budget(device, args.quick),
        time_limit_s=args.time_limit,
        json_path=Path(args.json) if args.json else None,
        quick=args.quick,
        compile_on_cpu=bool(providers and "torch.compile" in providers),
        argv=["inpaint-fused", *args.argv],
    )
    records = runner.run(cases, providers, progress=args.progress)
    print(benchmark.render_text(runner.meta, records))
    if args.json:
        print(f"results {args.json}")
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(benchmark.render_markdown(runner.meta, records))
        print(f"table   {args.markdown}")
    if args.plot:
        _plot(runner.meta, records, args.plot)
    failed = [r for r in records if r["status"] == "error" and r["provider"] == "fused"]
    for rec in failed:
        print(f"inpaint-fused: fused failed on {rec['id']}: {rec['reason']}", file=sys.stderr)
    return 1 if failed else 0


def _write_block(args: argparse.Namespace, block: str, markers: tuple[str, str]) -> None:
    """``--markdown`` and ``--readme`` of ``report``: the block to a file and between the README's ``markers``."""
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(block)
        print(f"table   {args.markdown}")
    if args.readme:
        try:
            benchmark.update_readme(Path(args.readme), block, markers)
        except (OSError, ValueError) as error:
            raise CLIError(f"--readme: {error}") from error
        print(f"readme  {args.readme} (between {markers[0]} and {markers[1]})")


def _report_diffusers(args: argparse.Namespace) -> int:
    try:
        block = benchmark.render_diffusers_markdown(Path(args.diffusers))
    except ValueError as error:
        raise CLIError(f"--diffusers: {error}") from error
    print(block, end="")
    _write_block(args, block, (benchmark.DIFFUSERS_START, benchmark.DIFFUSERS_END))
    return 0


def report(args: argparse.Namespace) -> int:
    if args.diffusers:
        if args.files or args.plot:
            raise CLIError("--diffusers takes its one file alone: no other results files, no --plot")
        return _report_diffusers(args)
    if not args.files:
        raise CLIError("report needs results files (or --diffusers FILE)")
    try:
        meta, records = benchmark.load_results(args.files)
    except (FileNotFoundError, ValueError) as error:
        raise CLIError(str(error)) from error
    print(benchmark.render_text(meta, records))
    if args.plot:
        _plot(meta, records, args.plot)
    if args.markdown or args.readme:
        link = None
        if args.plot:
            start = Path(args.readme).parent if args.readme else Path(args.markdown).parent
            link = Path(os.path.relpath(Path(args.plot).resolve(), start.resolve())).as_posix()
        block = benchmark.render_markdown(meta, records, link)
        _write_block(args, block, (benchmark.README_START, benchmark.README_END))
    return 0


# ---------------------------------------------------------------------------------------------
# Entry point


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inpaint-fused",
        description="Fused Triton preprocessing for inpainting VAE encoders: try it, benchmark it, report it.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{demo,bench,report}")

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
    d.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto", help="default: CUDA if available")
    d.set_defaults(run=demo)

    b = sub.add_parser(
        "bench",
        help="benchmark fused against the seed code, torch.compile and a copy",
        description="Benchmark matrix with providers side by side. On a machine without a GPU"
        " only the CPU-sized cases run.",
    )
    b.add_argument("--quick", action="store_true", help="small cases only, no torch.compile (under a minute on a CPU)")
    b.add_argument("--json", metavar="FILE", help="write the results (with GPU, versions and commit) to FILE")
    b.add_argument("--plot", metavar="FILE", help="write a PNG: time vs megapixels and vs box width (needs matplotlib)")
    b.add_argument("--markdown", metavar="FILE", help="write the tables as markdown")
    b.add_argument(
        "--case",
        action="append",
        metavar="SPEC",
        help="a case name (e.g. 1536x1024-g12, b4x768x768-was-20:bf16, grow-1024x1024-w33) or a"
        " pattern over the default cases (e.g. 'grow-*'); repeatable",
    )
    b.add_argument("--providers", metavar="LIST", help=f"comma-separated subset of {','.join(benchmark.PROVIDERS)}")
    b.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto", help="default: CUDA if available")
    b.add_argument("--budget", type=float, metavar="S", help="timed seconds per measurement")
    b.add_argument("--time-limit", type=float, metavar="S", help="skip what is left after S seconds (recorded)")
    b.add_argument(
        "--progress",
        choices=("bar", "lines", "none"),
        default="bar",
        help="a progress bar (default), one line per measurement (for logs), or nothing",
    )
    b.set_defaults(run=bench)

    r = sub.add_parser(
        "report",
        help="tables and plots from results files",
        description="Merge results files (bench --json, or pytest-benchmark --benchmark-json of"
        " bench/) and print the tables; optionally write markdown, a plot and the README block.",
    )
    r.add_argument("files", nargs="*", metavar="JSON")
    r.add_argument("--markdown", metavar="FILE", help="write the markdown tables to FILE")
    r.add_argument("--plot", metavar="FILE", help="write the plots as a PNG (needs matplotlib)")
    r.add_argument(
        "--readme",
        metavar="FILE",
        help=f"replace the block between {benchmark.README_START} and {benchmark.README_END} in FILE"
        f" ({benchmark.DIFFUSERS_START} ... with --diffusers)",
    )
    r.add_argument(
        "--diffusers",
        metavar="JSON",
        help="instead: the tables of a `pytest bench/bench_diffusers.py --benchmark-json` file",
    )
    r.set_defaults(run=report)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit status (2 for a usage or input error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    args.argv = argv
    try:
        return args.run(args)
    except CLIError as error:
        print(f"inpaint-fused: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
