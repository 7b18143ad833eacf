"""The MASK nodes' boundary: where ``GrowMaskFused`` runs and where its MASK goes. No math here.

Imports nothing from ComfyUI at module level (it runs and is tested without ComfyUI); inside
ComfyUI the defaults are ComfyUI's torch device and intermediate device.
"""

from __future__ import annotations

from typing import Optional

import torch

from .. import _backend, api
from ..ops.expand_mask_torch import expand_mask_torch


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
    if device.type == "cuda" and _backend.uses_triton(device):
        out = api.expand_mask(mask.to(device), expand, tapered_corners)
    else:
        out = expand_mask_torch(mask.cpu(), expand, tapered_corners)
    return out.to(intermediate_device() if output_device is None else output_device)
