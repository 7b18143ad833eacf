"""Regenerate the demo's sample picture and mask: ``python bench/make_samples.py`` (kept out of the
installed package: only the PNGs ship).

``sample.png``: a 512x384 synthetic landscape (sky gradient, sun, mountains, lake, trees, a house),
drawn with torch at twice the size and averaged down so edges are smooth. ``sample_mask.png``: a
256x192 grayscale mask over the house, white = repaint, with a soft edge so that the bilinear
upscale and the rounding have work to do, and no upscaled value at a rounding tie. Deterministic.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

HERE = Path(__file__).resolve().parent.parent / "inpaint_fused" / "data"
WIDTH, HEIGHT = 512, 384
SUPERSAMPLE = 2


def _rgb(*values: int) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32) / 255


def _paint(canvas: torch.Tensor, inside: torch.Tensor, color: torch.Tensor) -> torch.Tensor:
    return torch.where(inside[..., None], color, canvas)


def _grid(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    v = (torch.arange(height, dtype=torch.float32)[:, None] + 0.5) / height
    u = (torch.arange(width, dtype=torch.float32)[None, :] + 0.5) / width
    return u.expand(height, width), v.expand(height, width)


def landscape() -> torch.Tensor:
    """The picture as float ``(HEIGHT, WIDTH, 3)`` in [0, 1]."""
    u, v = _grid(HEIGHT * SUPERSAMPLE, WIDTH * SUPERSAMPLE)
    aspect = WIDTH / HEIGHT
    t = (v / 0.6).clamp(0, 1)[..., None]
    img = _rgb(38, 76, 150) * (1 - t) + _rgb(250, 176, 118) * t
    sun_d = torch.sqrt(((u - 0.74) * aspect) ** 2 + (v - 0.34) ** 2)
    glow = torch.exp(-sun_d / 0.08)[..., None]
    img = img * (1 - 0.5 * glow) + _rgb(255, 226, 170) * 0.5 * glow
    img = _paint(img, sun_d < 0.055, _rgb(255, 240, 200))

    far = 0.44 + 0.07 * torch.sin(u * 9.0 + 1.0) + 0.025 * torch.sin(u * 31.0)
    shade = ((v - far) / 0.2).clamp(0, 1)[..., None]
    img = torch.where((v > far)[..., None], _rgb(118, 104, 160) * (1 - 0.4 * shade), img)
    snow = (v > far) & (v < far + 0.02 + 0.01 * torch.sin(u * 57.0)) & (far < 0.42)
    img = _paint(img, snow, _rgb(236, 232, 244))

    near = 0.58 + 0.045 * torch.sin(u * 5.0 + 2.2)
    grass = ((v - near) / 0.42).clamp(0, 1)[..., None]
    img = torch.where((v > near)[..., None], _rgb(96, 150, 70) * (1 - grass) + _rgb(40, 82, 38) * grass, img)

    lake = ((u - 0.28) / 0.24) ** 2 + ((v - 0.84) / 0.085) ** 2 < 1
    mirrored = (1.68 - v).clamp(0, 1)
    water = _rgb(60, 110, 170) * (1 - mirrored[..., None]) + _rgb(150, 170, 200) * mirrored[..., None]
    ripple = 0.04 * torch.sin(v * 900.0 + u * 40.0)[..., None]
    img = torch.where(lake[..., None], water + ripple, img)

    for cx, base, size in ((0.08, 0.74, 0.12), (0.15, 0.72, 0.09), (0.9, 0.76, 0.14), (0.52, 0.7, 0.08)):
        half = size * 0.35 * (v - (base - size)) / size
        tree = (v > base - size) & (v < base) & ((u - cx).abs() * aspect < half)
        img = _paint(img, tree, _rgb(30, 70, 44))
        img = _paint(img, (v >= base) & (v < base + 0.03) & ((u - cx).abs() * aspect < 0.012), _rgb(80, 52, 34))

    walls = (u > 0.6) & (u < 0.75) & (v > 0.58) & (v < 0.73)
    img = _paint(img, walls, _rgb(206, 92, 64))
    roof = (v > 0.47) & (v <= 0.58) & ((u - 0.675).abs() < 0.09 * (v - 0.47) / 0.11)
    img = _paint(img, roof, _rgb(88, 48, 40))
    img = _paint(img, (u > 0.655) & (u < 0.69) & (v > 0.65) & (v < 0.73), _rgb(70, 44, 30))
    for wx in (0.62, 0.71):
        img = _paint(img, (u > wx) & (u < wx + 0.025) & (v > 0.61) & (v < 0.645), _rgb(255, 214, 110))
    img = _paint(img, (u > 0.715) & (u < 0.73) & (v > 0.48) & (v < 0.53), _rgb(110, 70, 60))

    img = img.clamp(0, 1).permute(2, 0, 1)[None]
    return F.avg_pool2d(img, SUPERSAMPLE)[0].permute(1, 2, 0)


def house_mask(height: int = HEIGHT // 2, width: int = WIDTH // 2, size: float = 1.15) -> torch.Tensor:
    """White (1) over the house, with a soft edge a few pixels wide; float ``(height, width)``."""
    u, v = _grid(height, width)
    d = torch.sqrt(((u - 0.675) / 0.125) ** 2 + ((v - 0.6) / 0.2) ** 2)
    edge = 4.0 / min(height, width) / 0.125
    return ((size - d) / edge).clamp(0, 1) ** (1 / math.e)


def _quantized(mask: torch.Tensor) -> torch.Tensor:
    return (mask.clamp(0, 1) * 255).round() / 255


def tie_free_mask() -> torch.Tensor:
    """The house mask, its size nudged until no upscaled pixel lies within 1e-6 of 0.5.

    The SPEC lets such a pixel round either way on the GPU, and the demo's sample should show a
    result identical to the seed code's on every device.
    """
    for step in range(100):
        mask = _quantized(house_mask(size=1.15 + 0.002 * step))
        upscaled = F.interpolate(mask[None, None], size=(HEIGHT, WIDTH), mode="bilinear")
        if not ((upscaled - 0.5).abs() < 1e-6).any():
            return mask
    raise RuntimeError("no tie-free mask size found")


def _save(tensor: torch.Tensor, path: Path, mode: str) -> None:
    data = (tensor.clamp(0, 1) * 255).round().to(torch.uint8).contiguous()
    Image.frombytes(mode, (data.shape[1], data.shape[0]), bytes(data.flatten().tolist())).save(path, optimize=True)


def main() -> None:
    _save(landscape(), HERE / "sample.png", "RGB")
    _save(tie_free_mask(), HERE / "sample_mask.png", "L")


if __name__ == "__main__":
    main()
