"""The node boundary of the mask nodes: where each one runs, ComfyUI's types in and out.

No math here but ThresholdMask's: one comparison per element has nothing to fuse, so that node runs
the stock expression itself. Feather, composite and the conditioning's gray fill are memory-bound
passes of a few bytes per pixel. Moving an image to a GPU and back costs more than the stock node's
whole CPU pass, so each node runs on the device its inputs already live on, as the stock node does
(the Triton kernel on a GPU, the pure-torch path on the CPU), and returns there.
InpaintModelConditioning is the exception: its pixels go to the VAE's device anyway, so they go
once, the gray fill runs there, and both encodes start from pixels already on the device (the stock
node fills on the CPU and lets ``VAE.encode`` upload twice, scaling and casting on the CPU each time).

GrowMaskFused runs on ComfyUI's torch device when Triton runs there (a grow of 64 costs the CPU far
more than the round trip), else on the CPU's pure-torch path, and returns on ComfyUI's intermediate
device; a large CPU mask goes through the GPU in chunks with the copies overlapped (``transfer.py``).
Nothing from ComfyUI is imported at module level (it runs and is tested without ComfyUI).
"""

from __future__ import annotations

import functools
from typing import Optional

import torch

from .. import _backend, api, masks, ops, reference
from ..ops.expand_mask_torch import expand_mask_torch
from . import transfer


def feather(mask: torch.Tensor, left: int, top: int, right: int, bottom: int) -> torch.Tensor:
    """``FeatherMaskFused``: the MASK of "FeatherMask", on the mask's device."""
    return masks.feather_mask(mask, left, top, right, bottom)


def threshold(mask: torch.Tensor, value: float) -> torch.Tensor:
    """``ThresholdMaskFused``: the MASK of "ThresholdMask": the stock expression itself, on the mask's device.

    One comparison per element is nothing to fuse: PyTorch's own two kernels (compare, cast) beat a
    Triton launch on a GPU up to a 16-frame batch and are the CPU path anyway, so the node runs the stock
    ``(mask > value).float()``: the stock result by construction, at the stock cost
    (``inpaint_fused.threshold_mask`` keeps the one-pass kernel for callers that want it).
    """
    return (mask > value).float()


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


def torch_device() -> torch.device:
    """ComfyUI's torch device (the GPU it runs models on), or the CPU outside ComfyUI."""
    try:
        from comfy.model_management import get_torch_device
    except ImportError:
        return torch.device("cpu")
    return get_torch_device()


def intermediate_device() -> torch.device:
    """Where ComfyUI keeps node outputs between nodes (the CPU unless ``--gpu-only``), or the CPU."""
    try:
        from comfy.model_management import intermediate_device as comfy_intermediate_device
    except ImportError:
        return torch.device("cpu")
    return comfy_intermediate_device()


def grow_mask(
    mask: torch.Tensor,
    expand: int,
    tapered_corners: bool,
    device: Optional[torch.device] = None,
    output_device: Optional[torch.device] = None,
) -> torch.Tensor:
    """``GrowMaskFused``: the MASK of "GrowMask", ``(B, h, w)`` in the mask's dtype.

    Runs the Triton kernels on ``device`` (default: ComfyUI's torch device) when it is a CUDA
    device, else the pure-torch path on the CPU; the result goes to ``output_device`` (default:
    ComfyUI's intermediate device, the CPU, where the stock node's numpy round trip leaves it).
    """
    if isinstance(mask, torch.Tensor) and mask.dim() >= 2:  # the stock node's reshape: any leading dims are the batch
        mask = mask.reshape((-1, mask.shape[-2], mask.shape[-1]))
    mask, expand, tapered_corners = api.check_expand_mask_args(mask, expand, tapered_corners)
    device = torch_device() if device is None else torch.device(device)
    output_device = intermediate_device() if output_device is None else torch.device(output_device)
    if device.type == "cuda" and _backend.uses_triton(device):
        if transfer.uses_pipeline(mask, device, output_device):
            grow = functools.partial(ops.expand_mask.expand_mask, expand=expand, tapered_corners=tapered_corners)
            return transfer.map_frames(grow, mask, device, transfer.frames_per_chunk(mask), transfer.PINNED_OUTPUT)
        out = api.expand_mask(mask.to(device), expand, tapered_corners)
    else:
        out = expand_mask_torch(mask.cpu(), expand, tapered_corners)
    return out.to(output_device)
