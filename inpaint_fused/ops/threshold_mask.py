"""``inpaint_fused::threshold_mask``: ComfyUI's ``ThresholdMask``, ``(mask > value).float()``.

One comparison per element. On the GPU a trivial Triton kernel does it in one pass (read the mask,
write float32), where PyTorch runs two kernels through a bool tensor; elsewhere the stock
expression itself is the fastest torch there is. ``value`` is rounded to the mask dtype first, as
PyTorch compares a tensor with a Python scalar in the tensor's dtype.
"""

from __future__ import annotations

import math
import struct

import torch

from .. import _backend
from .feather_mask import mask_tile_launch
from .launch import float32, pack_round

TRITON_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


def rounded_scalar(value: float, dtype: torch.dtype) -> float:
    """A Python scalar as PyTorch compares it with a ``dtype`` tensor: cast to that dtype (c10 casts a double
    to a half type through float32), returned as a float that float32 holds exactly.

    Plain host arithmetic (no tensor, no device): the kernel's only per-call scalar work.
    """
    single = float32(value)
    if dtype == torch.float16:
        return pack_round(single, "e")
    if dtype == torch.bfloat16 and not math.isnan(single):
        bits = struct.unpack("<I", struct.pack("<f", single))[0]
        bits = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16 << 16  # c10's round to nearest even
        return struct.unpack("<f", struct.pack("<I", bits))[0]
    return single


def threshold(mask: torch.Tensor, value: float) -> torch.Tensor:
    """The implementation behind the op, on a ``(N, h, w)`` mask."""
    if not (_backend.uses_triton(mask.device) and mask.dtype in TRITON_DTYPES):
        return (mask > value).float()
    out = torch.empty_like(mask, dtype=torch.float32, memory_format=torch.contiguous_format)
    mask_tile_launch(_backend.load_kernels()._threshold_mask_kernel, mask, out, rounded_scalar(value, mask.dtype))
    return out


@torch.library.custom_op("inpaint_fused::threshold_mask", mutates_args=())
def threshold_mask_op(mask: torch.Tensor, value: float) -> torch.Tensor:
    """``ThresholdMask`` of a ``(N, h, w)`` mask: ``(N, h, w)`` float32 0/1."""
    return threshold(mask, value)


@threshold_mask_op.register_fake
def _(mask, value):
    return mask.new_empty(mask.shape, dtype=torch.float32)
