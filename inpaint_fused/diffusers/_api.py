"""``prepare_masked_image``: validation and defaults in front of ``inpaint_fused::prepare_diffusers_inpaint``."""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch

from ..check import FLOAT_DTYPES, check_float_tensor, check_int, mask_batch, no_grad_input
from ..ops import prepare_diffusers_inpaint  # noqa: F401  (registers torch.ops.inpaint_fused.prepare_diffusers_inpaint)

FORMULAS = ("image * (mask < 0.5)", "image * (1 - mask)")


class DiffusersInpaintInputs(NamedTuple):
    """What ``prepare_mask_latents`` of the diffusers inpaint pipelines hands to the VAE and the UNet.

    ``masked_image``: ``(N, 3, H, W)`` in ``dtype``, ``image * (mask < 0.5)`` (or Flux Fill's
    ``image * (1 - mask)``): the VAE's input.
    ``mask``: ``(Bm, 1, H // f, W // f)`` in ``dtype``, the binarised mask at latent size (nearest).
    """

    masked_image: torch.Tensor
    mask: torch.Tensor


def prepare_masked_image(
    image: torch.Tensor,
    mask: torch.Tensor,
    *,
    vae_scale_factor: int = 8,
    dtype: Optional[torch.dtype] = None,
    grow_mask_by: int = 0,
    formula: str = "image * (mask < 0.5)",
) -> DiffusersInpaintInputs:
    """The diffusers inpaint pipelines' mask step in one fused pass: VAE input and latent-size mask.

    From the processed image (what ``pipe.image_processor.preprocess`` returns, ``[-1, 1]``) and
    the processed mask (``pipe.mask_processor.preprocess``, or any float mask of the same size: it
    is binarised here with diffusers' threshold, ``>= 0.5 -> 1``), computes what the pipelines do on
    the way to the VAE: ``(image * (mask < 0.5)).to(dtype)`` and
    ``F.interpolate(binarize(mask), size=(H // f, W // f)).to(dtype)`` (nearest), equal to them bit
    for bit. NaN in the mask behaves as in the pipelines: the pixel is zeroed, the latent mask keeps
    NaN.

    ``grow_mask_by = g >= 2`` first grows the binarised mask (NaN counting as set) by a ``g x g`` box
    with ComfyUI's ``grow_mask_by`` semantics (asymmetric for even ``g``: ``g/2 - 1`` up/left,
    ``g/2`` down/right), then uses it for both outputs, exactly as if that grown mask had been
    passed to the pipeline. 0 and 1 do not grow. The cost does not depend on ``g``.

    ``formula`` names the pipeline's masking statement: ``"image * (mask < 0.5)"`` (SD, SDXL, Flux
    inpaint) or ``"image * (1 - mask)"`` (``FluxFillPipeline``, which also keeps the mask at full
    size: ``vae_scale_factor=1``). They differ only where the mask is NaN: zero, or NaN.

    Runs the Triton kernel on CUDA tensors, and on CPU tensors when ``TRITON_INTERPRET=1``;
    otherwise the pipelines' own torch code.

    Shape:
        - image: ``(B, 3, H, W)``, any float dtype and strides, on the device that should do the work.
        - mask: ``(Bm, 1, H, W)``, ``(Bm, H, W)`` or ``(H, W)``, any float dtype, moved to the image's
          device. ``Bm`` is 1, ``B``, or anything when ``B == 1`` (broadcast as ``image * mask``).
        - output ``masked_image``: ``(max(B, Bm), 3, H, W)`` in ``dtype``, laid out as the
          pipelines' ``image * (mask < 0.5)`` would be (channels-last for a channels-last image).
        - output ``mask``: ``(Bm, 1, H // f, W // f)`` in ``dtype``, laid out as ``F.interpolate``'s.

    Raises:
        TypeError: a non-tensor or non-float input, a non-int ``vae_scale_factor``/``grow_mask_by``,
            a ``dtype`` that is not a float dtype.
        ValueError: a wrong rank, not 3 image channels, an empty batch, a mask of another size than
            the image, batches that do not broadcast, ``vae_scale_factor < 1`` or larger than the
            image, ``grow_mask_by < 0``, a ``formula`` other than the two above.

    Example:
        >>> import torch
        >>> from inpaint_fused.diffusers import prepare_masked_image
        >>> image, mask = torch.rand(1, 3, 64, 48) * 2 - 1, torch.rand(1, 1, 64, 48)
        >>> out = prepare_masked_image(image, mask, vae_scale_factor=8, dtype=torch.float16)
        >>> out.masked_image.shape, out.mask.shape
        (torch.Size([1, 3, 64, 48]), torch.Size([1, 1, 8, 6]))
    """
    image = no_grad_input(check_float_tensor(image, "image"), "image")
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(
            f"image must be (B, 3, H, W) as VaeImageProcessor.preprocess gives, got shape {tuple(image.shape)}"
        )
    batch, _, height, width = image.shape
    if batch == 0:
        raise ValueError("image must hold at least one image, got batch 0")
    factor = check_int(vae_scale_factor, "vae_scale_factor", 1)
    if height < factor or width < factor:
        raise ValueError(
            f"image of {height}x{width} is smaller than vae_scale_factor={factor}: the latent would be empty"
        )
    grow = check_int(grow_mask_by, "grow_mask_by", 0)
    if formula not in FORMULAS:
        raise ValueError(f"formula must be one of {FORMULAS}, got {formula!r}")
    dtype = image.dtype if dtype is None else dtype
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be float16, bfloat16, float32 or float64, got {dtype}")
    mask = mask_batch(mask, image.device, "image").unsqueeze(1)
    if tuple(mask.shape[-2:]) != (height, width):
        raise ValueError(
            f"mask of {tuple(mask.shape[-2:])} does not match the image's {(height, width)}: "
            "preprocess both to one size"
        )
    if mask.shape[0] not in (1, batch) and batch != 1:
        raise ValueError(
            f"mask batch {mask.shape[0]} does not broadcast with image batch {batch}: it must be 1 or {batch}"
        )
    return DiffusersInpaintInputs(
        *torch.ops.inpaint_fused.prepare_diffusers_inpaint(image, mask, grow, factor, dtype, formula == FORMULAS[1])
    )
