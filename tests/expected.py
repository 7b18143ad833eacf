"""Expected outputs built from the reference, and the comparison the fused contract allows."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from inpaint_fused import reference

NEAR_TIE = 1e-6


def random_pixels(shape, dtype=torch.float32, device="cpu", generator=None) -> torch.Tensor:
    """Uniform [0, 1) with full mantissas (``torch.rand`` float32 values never move under ``(p-0.5)+0.5``)."""
    return torch.rand(shape, dtype=torch.float64, generator=generator).to(device=device, dtype=dtype)


def random_mask(shape, device="cpu", generator=None, soft: bool = True, density: float = 0.4) -> torch.Tensor:
    """0/1 pixels (``density`` of them 1) with soft values mixed in, so rounding, growth and resizing matter.

    Growth saturates a dense mask: sweeps over the window size use a sparse one (or sparse holes).
    """
    hard = (torch.rand(shape, generator=generator) < density).float()
    if not soft:
        return hard.to(device)
    values = torch.rand(shape, generator=generator)
    return torch.where(torch.rand(shape, generator=generator) < 0.3, values, hard).to(device)


def expected(pixels, mask, value, *, was=False, ratio=8, vae_dtype=None):
    """The seed's outputs for the fused API's inputs: (pixels or VAE input, noise mask float32, reach mask)."""
    mask = mask.reshape(-1, mask.shape[-2], mask.shape[-1]).to(pixels.device)
    if pixels.shape[0] == 1 and mask.shape[0] > 1:
        pixels = pixels.expand(mask.shape[0], -1, -1, -1)
    encode = reference.was_vae_encode_for_inpaint if was else reference.vae_encode_for_inpaint
    out, noise = encode(pixels, mask, value, ratio)
    if vae_dtype is not None:
        out = reference.vae_input(out, vae_dtype)
    return out, noise.to(torch.float32), _near_tie_reach(pixels, mask, value, was, ratio)


def _near_tie_reach(pixels, mask, value, was, ratio):
    """Where a bilinear value within NEAR_TIE of 0.5 could change a result: those pixels, grown by the window."""
    height, width = pixels.shape[1:3]
    if (mask.shape[-2], mask.shape[-1]) == (height, width):
        return None  # an identity resize: ties are exact and must round half to even
    resized = F.interpolate(mask.reshape(-1, 1, *mask.shape[-2:]).double(), size=(height, width), mode="bilinear")
    x, y = height // ratio * ratio, width // ratio * ratio
    oh, ow = height % ratio // 2, width % ratio // 2
    ties = ((resized[:, :, oh : oh + x, ow : ow + y] - 0.5).abs() <= NEAR_TIE).float()
    radius = abs(value)
    if radius:
        ties = F.max_pool2d(ties, 2 * radius + 1, stride=1, padding=radius)
    return ties.bool()


def assert_matches(out, ref, reach=None, what="output", channels_last=False):
    """Bit-equal, except (for a resized mask) inside the reach of near-0.5 bilinear values.

    ``reach`` is ``(Bm, 1, x, y)``; ``out`` is NCHW-like, or ``(N, x, y, C)`` with ``channels_last``.
    """
    assert out.shape == ref.shape, f"{what}: shape {tuple(out.shape)} != {tuple(ref.shape)}"
    assert out.dtype == ref.dtype, f"{what}: dtype {out.dtype} != {ref.dtype}"
    same = (out == ref) | (out.isnan() & ref.isnan())
    if reach is not None:
        if channels_last:
            allowed = reach[:, 0, :, :, None].expand(out.shape[0], -1, -1, out.shape[-1])
        else:
            allowed = reach.expand(out.shape[0], out.shape[1], -1, -1)
        allowed = allowed.to(out.device)
        bad = ~same & ~allowed
    else:
        bad = ~same
    assert not bad.any(), f"{what}: {int(bad.sum())} of {out.numel()} elements differ from the reference"

