"""The node boundary of the mask nodes: where each one runs, ComfyUI's types in and out. No math here.

Feather, threshold, composite and the conditioning's gray fill are memory-bound passes of a few
bytes per pixel. Moving an image to a GPU and back costs more than the stock node's whole CPU pass,
so each node runs on the device its inputs already live on, as the stock node does (the Triton
kernel on a GPU, the pure-torch path on the CPU), and returns there. InpaintModelConditioning is
the exception: its pixels go to the VAE's device anyway, so they go once, the gray fill runs there,
and both encodes start from pixels already on the device (the stock node fills on the CPU and
lets ``VAE.encode`` upload twice, scaling and casting on the CPU each time).
"""

from __future__ import annotations

from typing import Optional

import torch

from .. import masks, reference


def feather(mask: torch.Tensor, left: int, top: int, right: int, bottom: int) -> torch.Tensor:
    """``FeatherMaskFused``: the MASK of "FeatherMask", on the mask's device."""
    return masks.feather_mask(mask, left, top, right, bottom)


def threshold(mask: torch.Tensor, value: float) -> torch.Tensor:
    """``ThresholdMaskFused``: the MASK of "ThresholdMask", on the mask's device."""
    return masks.threshold_mask(mask, value)


def composite(
    destination: torch.Tensor,
    source: torch.Tensor,
    x: int,
    y: int,
    resize_source: bool,
    mask: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """``ImageCompositeMaskedFused``: the IMAGE of "ImageCompositeMasked", on the destination's device."""
    return masks.composite_masked(destination, source, x, y, resize_source, mask)


def _vae_device(vae, pixels: torch.Tensor) -> torch.device:
    device = getattr(vae, "device", None)
    return pixels.device if device is None else torch.device(device)


def inpaint_model_conditioning(
    positive: list, negative: list, pixels: torch.Tensor, vae, mask: torch.Tensor, noise_mask: bool = True
) -> tuple[list, list, dict]:
    """``InpaintModelConditioningFused``: the two CONDITIONINGs and the LATENT of "InpaintModelConditioning".

    The pixels go to the VAE's device once; the fused pass crops and gray-fills them there while the
    mask is resized on its own device (the stock mask, bit for bit, where the stock node leaves it);
    the ComfyUI VAE's own ``encode`` takes the filled and the original pixels, so the latents come
    back on its output device exactly as behind the stock node.
    """
    device = _vae_device(vae, pixels)
    pixels_on_device = pixels.to(device) if isinstance(pixels, torch.Tensor) else pixels
    prepared = masks.prepare_inpaint_conditioning(pixels_on_device, mask)
    concat_latent = vae.encode(prepared.pixels)
    orig_latent = vae.encode(pixels_on_device)
    out_latent = {"samples": orig_latent}
    if noise_mask:
        out_latent["noise_mask"] = prepared.mask
    values = {"concat_latent_image": concat_latent, "concat_mask": prepared.mask}
    positive = reference.conditioning_set_values(positive, values)
    negative = reference.conditioning_set_values(negative, values)
    return positive, negative, out_latent
