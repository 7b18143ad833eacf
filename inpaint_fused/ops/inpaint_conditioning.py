"""``inpaint_fused::inpaint_conditioning``: the pixel and mask work of ComfyUI's ``InpaintModelConditioning``.

The op takes a validated IMAGE ``(B, H, W, C)`` and MASK ``(Bm, h, w)`` (values in [0, 1], ``Bm`` 1
or ``B``; :func:`inpaint_fused.masks.prepare_inpaint_conditioning` owns validation) and returns

- the gray-filled pixels cropped to a multiple of 8 (``(B, x, y, C)`` in the pixel dtype), or, with a
  ``vae_dtype``, the VAE's input ``(B, 3, x, y)``: NCHW, ``2p - 1``, that dtype; on the pixels' device;
- the resized, cropped, unrounded mask ``(Bm, 1, x, y)`` on the mask's device (the stock node's
  ``concat_mask`` and ``noise_mask``).

The mask resize is the stock ``F.interpolate`` call on the mask's device: PyTorch's bilinear
arithmetic differs between devices (the CPU kernel contracts into fused multiply-adds), and this
mask is an output compared bit for bit. Crop, rounding, gray fill and the VAE-input write are one
pass of the core fill kernel (``prepare_inpaint`` with ``grow_mask_by=0`` and a mask at the image
size, which it reads as is: for values in [0, 1] its ``v > 0.5`` is ``torch.round``), on the
pixels' device; so pixels on the GPU with the mask on the CPU give the stock mask and a GPU fill.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from ..check import values_in_unit_range
from .launch import core_morphology, crop_geometry
from .prepare_inpaint import prepare

# InpaintModelConditioning crops to multiples of 8 whatever the VAE (the VAE then crops to its own ratio).
CONDITIONING_RATIO = 8


def resized_mask(mask: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``(Bm, 1, height, width)``: the stock node's bilinear resize, on the mask's device.

    At the same size PyTorch's resize reproduces every finite value (weights 1 and 0 on the same
    sample), and the mask is checked to lie in [0, 1]: the mask itself is that result, a view.
    """
    mask = mask.reshape((-1, 1, mask.shape[-2], mask.shape[-1]))
    if mask.shape[-2:] == (height, width):
        return mask
    return F.interpolate(mask, size=(height, width), mode="bilinear")


def conditioning(
    pixels: torch.Tensor, mask: torch.Tensor, vae_dtype: Optional[torch.dtype]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The implementation behind the op.

    Checks the mask's values here rather than in the public function: a data-dependent check runs
    eagerly inside the op, also in a compiled graph.
    """
    values_in_unit_range(mask, "mask")
    height, width = pixels.shape[1], pixels.shape[2]
    full = resized_mask(mask, height, width)
    x, y, off_h, off_w = crop_geometry(height, width, CONDITIONING_RATIO)
    cropped = full[:, :, off_h : off_h + x, off_w : off_w + y].clone(memory_format=torch.contiguous_format)
    filled, _ = prepare(pixels, full[:, 0].to(pixels.device), core_morphology(0), CONDITIONING_RATIO, vae_dtype)
    return filled, cropped


@torch.library.custom_op("inpaint_fused::inpaint_conditioning", mutates_args=())
def inpaint_conditioning_op(
    pixels: torch.Tensor, mask: torch.Tensor, vae_dtype: Optional[torch.dtype]
) -> tuple[torch.Tensor, torch.Tensor]:
    """``InpaintModelConditioning`` up to its encodes: ``(filled pixels or VAE input, mask (Bm, 1, x, y))``."""
    return conditioning(pixels, mask, vae_dtype)


@inpaint_conditioning_op.register_fake
def _(pixels, mask, vae_dtype):
    batch, height, width, channels = pixels.shape
    x, y, _, _ = crop_geometry(height, width, CONDITIONING_RATIO)
    if vae_dtype is None:
        filled = pixels.new_empty((batch, x, y, channels))
    else:
        filled = pixels.new_empty((batch, 3, x, y), dtype=vae_dtype)
    return filled, mask.new_empty((mask.shape[0], 1, x, y))
