"""The diffusers inpaint pipelines' own preprocessing, statement for statement: oracle and fallback.

``StableDiffusionInpaintPipeline`` / ``StableDiffusionXLInpaintPipeline`` / ``FluxInpaintPipeline``
(diffusers 0.32 - 0.42): ``mask_processor.preprocess`` ends with ``VaeImageProcessor.binarize``;
``__call__`` forms ``masked_image = init_image * (mask < 0.5)``; ``prepare_mask_latents`` resizes
the mask with ``F.interpolate(mask, size=(height // f, width // f))`` (nearest) and casts both to
the pipeline's dtype before the VAE. ``FluxFillPipeline`` forms ``init_image * (1 - mask)``
instead and keeps the mask at full size (``f = 1`` here). The optional growth is ComfyUI's
(``inpaint_fused.reference.grow_mask``) applied to the binarised mask, as if the user had passed
that grown mask. Never edited to agree with a kernel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import reference


def binarize(mask: torch.Tensor) -> torch.Tensor:
    """``VaeImageProcessor.binarize`` on a copy: ``< 0.5 -> 0``, then ``>= 0.5 -> 1``; NaN stays NaN."""
    mask = mask.clone()
    mask[mask < 0.5] = 0
    mask[mask >= 0.5] = 1
    return mask


def grow_binarized(mask: torch.Tensor, grow_mask_by: int) -> torch.Tensor:
    """ComfyUI's ``g x g`` box growth of ``not (mask < 0.5)`` (NaN counts as set), cut to size, float32 0/1."""
    height, width = mask.shape[-2:]
    bits = (~(mask < 0.5)).to(torch.float32)
    return reference.grow_mask(bits, grow_mask_by)[:, :, :height, :width]


def prepare_mask_and_masked_image(
    image: torch.Tensor,
    mask: torch.Tensor,
    grow_mask_by: int,
    vae_scale_factor: int,
    dtype: torch.dtype,
    one_minus: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(masked_image.to(dtype), latent_mask.to(dtype))`` from ``image (B, 3, H, W)``, ``mask (Bm, 1, H, W)``.

    ``one_minus``: the masked image is Flux Fill's ``image * (1 - mask)``, else ``image * (mask < 0.5)``.
    """
    mask = binarize(mask)
    if grow_mask_by > 1:
        mask = grow_binarized(mask, grow_mask_by)
    height, width = image.shape[-2:]
    masked_image = image * (1 - mask) if one_minus else image * (mask < 0.5)
    latent_mask = F.interpolate(mask, size=(height // vae_scale_factor, width // vae_scale_factor))
    return masked_image.to(dtype=dtype), latent_mask.to(dtype=dtype)
