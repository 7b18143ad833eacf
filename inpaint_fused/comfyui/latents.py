"""The node boundary: ComfyUI's IMAGE, MASK and VAE in, its LATENT dict out, the package in between.

No math here: each function calls one function of :mod:`inpaint_fused.vae` and wraps the result the
way the node it replaces does (``samples``, plus ``noise_mask`` where that node has one).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Optional

import torch

from .. import vae as vae_layer


def progress_bar(total: int) -> Optional[Callable[[int], None]]:
    """ComfyUI's ``ProgressBar`` (which also raises a user's cancel) inside ComfyUI, else ``None`` (tqdm)."""
    try:
        from comfy.utils import ProgressBar
    except ImportError:
        return None
    return ProgressBar(total).update


def _frames(pixels: torch.Tensor, mask: Optional[torch.Tensor] = None) -> int:
    masks = 0 if mask is None or mask.dim() < 3 else mask.shape[0]
    return max(pixels.shape[0] if pixels.dim() == 4 else 0, masks)


def encode_for_inpaint(vae, pixels: torch.Tensor, mask: torch.Tensor, grow_mask_by: int) -> dict:
    """``VAEEncodeForInpaintFused``: the LATENT of core "VAE Encode (for Inpainting)"."""
    out = vae_layer.encode_for_inpaint(vae, pixels, mask, grow_mask_by)
    return {"samples": out.samples, "noise_mask": out.noise_mask}


def encode_for_inpaint_was(vae, pixels: torch.Tensor, mask: torch.Tensor, mask_offset: int) -> dict:
    """``VAEEncodeForInpaintWASFused``: the LATENT of "Inpainting VAE Encode (WAS)"."""
    out = vae_layer.encode_for_inpaint_was(vae, pixels, mask, mask_offset)
    return {"samples": out.samples, "noise_mask": out.noise_mask}


def encode(vae, pixels: torch.Tensor) -> dict:
    """``VAEEncodeFused``: the LATENT of core "VAE Encode"."""
    return {"samples": vae_layer.encode(vae, pixels)}


def encode_batched(vae, pixels: torch.Tensor, per_batch: int) -> dict:
    """``VAEEncodeBatchedFused``: the LATENT of VideoHelperSuite "VAE Encode Batched"."""
    progress = progress_bar(_frames(pixels))
    return {"samples": vae_layer.encode_batched(vae, pixels, per_batch, progress=progress)}


def encode_for_inpaint_batched(
    vae, pixels: torch.Tensor, mask: torch.Tensor, grow_mask_by: int, per_batch: int
) -> dict:
    """``VAEEncodeForInpaintBatchedFused``: "VAE Encode (for Inpainting)" of a video, slice by slice."""
    progress = progress_bar(_frames(pixels, mask))
    out = vae_layer.encode_for_inpaint_batched(vae, pixels, mask, grow_mask_by, per_batch, progress=progress)
    return {"samples": out.samples, "noise_mask": out.noise_mask}
