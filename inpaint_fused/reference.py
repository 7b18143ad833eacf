"""Pure-torch reference of the systems inpaint-fused replaces.

Each function repeats the seed node's tensor operations one for one (SPEC sections A-D), so that it
can serve as the test oracle, the benchmark baseline and the no-GPU fallback. Differences from the
seed code are limited to what makes it run anywhere: the convolution kernel is created on the
mask's device and in its dtype (the seed makes a CPU float32 one), the downscale ratio is an int
argument instead of a VAE attribute, and the VAE is any ``encode`` callable. This module is never
edited to agree with a kernel.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = [
    "vae_encode_for_inpaint",
    "was_vae_encode_for_inpaint",
    "was_modify_mask",
    "grow_mask",
    "vae_encode_crop_pixels",
    "vae_input",
    "vae_encode",
    "vae_encode_batched",
    "grow_mask_node",
]


def _resize_mask(mask: torch.Tensor, height: int, width: int) -> torch.Tensor:
    return F.interpolate(
        mask.reshape((-1, 1, mask.shape[-2], mask.shape[-1])), size=(height, width), mode="bilinear"
    )


def _crop(pixels: torch.Tensor, mask: torch.Tensor, ratio: int) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    x = pixels.shape[1] // ratio * ratio
    y = pixels.shape[2] // ratio * ratio
    if pixels.shape[1] != x or pixels.shape[2] != y:
        x_offset = pixels.shape[1] % ratio // 2
        y_offset = pixels.shape[2] % ratio // 2
        pixels = pixels[:, x_offset : x + x_offset, y_offset : y + y_offset, :]
        mask = mask[:, :, x_offset : x + x_offset, y_offset : y + y_offset]
    return pixels, mask, x, y


def _gray_fill_(pixels: torch.Tensor, fill_mask: torch.Tensor) -> None:
    m = (1.0 - fill_mask.round()).squeeze(1)
    for i in range(3):
        pixels[:, :, :, i] -= 0.5
        pixels[:, :, :, i] *= m
        pixels[:, :, :, i] += 0.5


def grow_mask(mask: torch.Tensor, grow_mask_by: int) -> torch.Tensor:
    """ComfyUI's growth step on a ``(B, 1, x, y)`` mask: round, ``g x g`` box conv, clamp.

    ``grow_mask_by == 0`` returns the mask unchanged (unrounded), as the seed does. The result is
    not yet cut to ``[:x, :y]``; for even ``g`` it is one row and column larger.
    """
    if grow_mask_by == 0:
        return mask
    kernel_tensor = torch.ones((1, 1, grow_mask_by, grow_mask_by), device=mask.device, dtype=mask.dtype)
    padding = math.ceil((grow_mask_by - 1) / 2)
    return torch.clamp(F.conv2d(mask.round(), kernel_tensor, padding=padding), 0, 1)


def vae_encode_for_inpaint(
    pixels: torch.Tensor, mask: torch.Tensor, grow_mask_by: int = 6, downscale_ratio: int = 8
) -> tuple[torch.Tensor, torch.Tensor]:
    """ComfyUI core ``VAEEncodeForInpaint.encode`` up to (not including) ``vae.encode``.

    Shape:
        pixels ``(B, H, W, C)``, mask ``(Bm, h, w)`` / ``(h, w)`` / ``(Bm, 1, h, w)``.
        Returns the gray-filled, cropped pixels ``(B, x, y, C)`` that the seed hands to
        ``vae.encode`` and the noise mask ``(Bm, 1, x, y)``.
    """
    ratio = downscale_ratio
    mask = _resize_mask(mask, pixels.shape[1], pixels.shape[2])
    pixels = pixels.clone()
    pixels, mask, x, y = _crop(pixels, mask, ratio)
    mask_erosion = grow_mask(mask, grow_mask_by)
    _gray_fill_(pixels, mask)
    return pixels, mask_erosion[:, :, :x, :y].round()


def was_modify_mask(mask: torch.Tensor, modify_by: int) -> torch.Tensor:
    """WAS ``modify_mask``: symmetric box dilation (``> 0``) or erosion (``< 0``) of the rounded mask."""
    if modify_by == 0:
        return mask
    kernel_size = 2 * abs(modify_by) + 1
    kernel_tensor = torch.ones((1, 1, kernel_size, kernel_size), device=mask.device, dtype=mask.dtype)
    padding = abs(modify_by)
    if modify_by > 0:
        return torch.clamp(F.conv2d(mask.round(), kernel_tensor, padding=padding), 0, 1)
    eroded_mask = F.conv2d(1 - mask.round(), kernel_tensor, padding=padding)
    return torch.clamp(1 - eroded_mask, 0, 1)


def was_vae_encode_for_inpaint(
    pixels: torch.Tensor, mask: torch.Tensor, mask_offset: int = 6, downscale_ratio: int = 8
) -> tuple[torch.Tensor, torch.Tensor]:
    """WAS ``VAEEncodeForInpaint (WAS).encode`` up to ``vae.encode``.

    The seed hard-codes ``downscale_ratio = 8``; passing the VAE's ratio is the allowed extension.
    Unlike the core node, the gray fill uses the modified mask.
    """
    ratio = downscale_ratio
    mask = _resize_mask(mask, pixels.shape[1], pixels.shape[2])
    pixels = pixels.clone()
    pixels, mask, x, y = _crop(pixels, mask, ratio)
    mask_erosion = was_modify_mask(mask, mask_offset)
    _gray_fill_(pixels, mask_erosion)
    return pixels, mask_erosion[:, :, :x, :y].round()


def vae_encode_crop_pixels(pixels: torch.Tensor, downscale_ratio: int = 8) -> torch.Tensor:
    """ComfyUI ``VAE.vae_encode_crop_pixels``: centred crop of every spatial dim to a multiple of the ratio."""
    dims = pixels.shape[1:-1]
    for d in range(len(dims)):
        x = (dims[d] // downscale_ratio) * downscale_ratio
        x_offset = (dims[d] % downscale_ratio) // 2
        if x != dims[d]:
            pixels = pixels.narrow(d + 1, x_offset, x)
    return pixels


def vae_input(pixels: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """What a VAE's first layer receives: NHWC ``[0, 1]`` -> NCHW ``2p - 1`` in ``dtype``.

    ComfyUI's ``VAE.encode`` computes ``p * 2.0 - 1.0`` in the pixels' dtype and then casts.
    """
    out = pixels[..., :3].movedim(-1, 1) * 2.0 - 1.0
    return out if dtype is None else out.to(dtype)


def vae_encode(
    encode: Callable[[torch.Tensor], torch.Tensor], pixels: torch.Tensor, downscale_ratio: int = 8
) -> torch.Tensor:
    """ComfyUI ``VAEEncode.encode``: ``vae.encode(pixels[:, :, :, :3])``, which crops first."""
    return encode(vae_encode_crop_pixels(pixels[:, :, :, :3], downscale_ratio))


def vae_encode_batched(
    encode: Callable[[torch.Tensor], torch.Tensor],
    pixels: torch.Tensor,
    per_batch: int = 16,
    downscale_ratio: int = 8,
    progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """VideoHelperSuite ``VAEEncodeBatched.encode``: slices of ``per_batch`` frames, concatenated.

    ``progress(n)`` is called after each slice with ``per_batch``, as the seed's ``pbar.update``.
    """
    t = []
    for start_idx in range(0, pixels.shape[0], per_batch):
        sub_pixels = vae_encode_crop_pixels(pixels[start_idx : start_idx + per_batch], downscale_ratio)
        t.append(encode(sub_pixels[:, :, :, :3]))
        if progress is not None:
            progress(per_batch)
    return torch.cat(t, dim=0)


def grow_mask_node(mask: torch.Tensor, expand: int, tapered_corners: bool) -> torch.Tensor:
    """ComfyUI ``GrowMask.expand_mask`` (``comfy_extras/nodes_mask.py``): ``|expand|`` scipy steps per mask.

    Each step is ``grey_dilation`` (``expand > 0``) or ``grey_erosion`` (``< 0``) with a 3x3
    footprint, a cross when ``tapered_corners`` else the full square; scipy's default border mode
    (``reflect``) lets no outside value win. Goes through numpy: the mask must be on the CPU in
    float32 or float64; the result is a CPU ``(B, h, w)`` tensor of that dtype.
    """
    import numpy as np
    import scipy.ndimage

    c = 0 if tapered_corners else 1
    kernel = np.array([[c, 1, c], [1, 1, 1], [c, 1, c]])
    mask = mask.reshape((-1, mask.shape[-2], mask.shape[-1]))
    out = []
    for m in mask:
        output = m.numpy()
        for _ in range(abs(expand)):
            if expand < 0:
                output = scipy.ndimage.grey_erosion(output, footprint=kernel)
            else:
                output = scipy.ndimage.grey_dilation(output, footprint=kernel)
        output = torch.from_numpy(output)
        out.append(output)
    return torch.stack(out, dim=0)
