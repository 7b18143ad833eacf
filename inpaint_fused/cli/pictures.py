"""Pictures in and out of the command line: PNGs as IMAGE/MASK tensors, and the demo's preview."""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F

from .common import CLIError

DATA = Path(__file__).resolve().parent.parent / "data"
SAMPLE_IMAGE = DATA / "sample.png"
SAMPLE_MASK = DATA / "sample_mask.png"

PANEL_MAX = 640
MARGIN = 8
HEADER = 24
BACKGROUND = (28, 28, 30)
OUTLINE = (255, 214, 0)
NOISE = (236, 48, 112)


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
