"""``inpaint_fused::feather_mask``: ComfyUI's ``FeatherMask`` ramps, Triton kernel or pure torch.

The op takes a validated ``(N, h, w)`` mask and ramp widths already clamped to its size
(:func:`inpaint_fused.masks.feather_mask` owns validation). Both paths give the stock node's values
bit for bit: every element is multiplied by its left, right, top and bottom factor in that order,
each factor ``(x + 1) / n`` divided in double and, as PyTorch does for a Python scalar, rounded to
float32 (float64 masks keep the double) before the product.
"""

from __future__ import annotations

import torch

from .. import _backend
from .launch import cdiv, check_index_range

TRITON_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
# (BLOCK_H, BLOCK_W, num_warps): 1024 elements per program, rows of 256 for coalesced access.
GPU_TILE = (4, 256, 4)
INTERPRETER_TILE = (16, 64, 1)


def mask_tile_launch(kernel, mask: torch.Tensor, out: torch.Tensor, *args) -> None:
    """Launch a per-element ``(N, h, w)`` mask kernel over 2-D tiles (``feather_mask``, ``threshold_mask``)."""
    check_index_range(mask, "mask")
    n, h, w = mask.shape
    gpu = mask.is_cuda
    block_h, block_w, warps = GPU_TILE if gpu else INTERPRETER_TILE
    extra = {"num_warps": warps} if gpu else {}
    grid = (cdiv(w, block_w), cdiv(h, block_h), n)
    kernel[grid](mask, out, *mask.stride(), h, w, *args, BLOCK_H=block_h, BLOCK_W=block_w, **extra)


def _ramp(count: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The ``count`` factors ``(x + 1) / count`` in double, rounded to the factor dtype, on ``device``."""
    rates = (torch.arange(count, dtype=torch.float64) + 1.0) / count
    return rates.to(dtype).to(device)


def _feather_torch(mask: torch.Tensor, left: int, top: int, right: int, bottom: int) -> torch.Tensor:
    """Pure torch: one product per ramp over only the columns/rows it touches (the stock node loops
    over them one by one). ``-x`` for ``x < right`` is column 0, then columns ``w - right + 1 .. w - 1``.
    Column/row 0 takes a Python scalar, as in the stock node (a 0-dim tensor would not promote)."""
    out = mask.clone(memory_format=torch.contiguous_format)
    n, h, w = out.shape
    factor_dtype = torch.float64 if out.dtype == torch.float64 else torch.float32
    device = out.device
    if left:
        out[:, :, :left] *= _ramp(left, factor_dtype, device)
    if right:
        out[:, :, 0] *= 1 / right
        if right > 1:
            out[:, :, w - right + 1 :] *= _ramp(right, factor_dtype, device)[1:].flip(0)
    if top:
        out[:, :top, :] *= _ramp(top, factor_dtype, device)[:, None]
    if bottom:
        out[:, 0, :] *= 1 / bottom
        if bottom > 1:
            out[:, h - bottom + 1 :, :] *= _ramp(bottom, factor_dtype, device)[1:].flip(0)[:, None]
    return out


def feather(mask: torch.Tensor, left: int, top: int, right: int, bottom: int) -> torch.Tensor:
    """The implementation behind the op: the kernel where Triton runs and the dtype fits, else torch."""
    if not (_backend.uses_triton(mask.device) and mask.dtype in TRITON_DTYPES):
        return _feather_torch(mask, left, top, right, bottom)
    out = torch.empty_like(mask, memory_format=torch.contiguous_format)
    mask_tile_launch(_backend.load_kernels()._feather_mask_kernel, mask, out, left, top, right, bottom)
    return out


@torch.library.custom_op("inpaint_fused::feather_mask", mutates_args=())
def feather_mask_op(mask: torch.Tensor, left: int, top: int, right: int, bottom: int) -> torch.Tensor:
    """``FeatherMask`` of a ``(N, h, w)`` mask, ramp widths clamped to its size: ``(N, h, w)``, its dtype."""
    return feather(mask, left, top, right, bottom)


@feather_mask_op.register_fake
def _(mask, left, top, right, bottom):
    return mask.new_empty(mask.shape)
