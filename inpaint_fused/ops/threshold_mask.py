"""``inpaint_fused::threshold_mask``: ComfyUI's ``ThresholdMask``, ``(mask > value).float()``.

One comparison per element. On the GPU a trivial Triton kernel does it in one pass (read the mask,
write float32), where PyTorch runs two kernels through a bool tensor; elsewhere the stock
expression itself is the fastest torch there is. ``value`` is rounded to the mask dtype first, as
PyTorch compares a tensor with a Python scalar in the tensor's dtype.
"""

from __future__ import annotations

import torch

from .. import _backend
from .feather_mask import mask_tile_launch

TRITON_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


def threshold(mask: torch.Tensor, value: float) -> torch.Tensor:
    """The implementation behind the op, on a ``(N, h, w)`` mask."""
    if not (_backend.uses_triton(mask.device) and mask.dtype in TRITON_DTYPES):
        return (mask > value).float()
    # The scalar as PyTorch sees it: rounded to the mask dtype, then (exactly) to float32 for the kernel.
    rounded = float(torch.tensor(value, dtype=torch.float64).to(mask.dtype).to(torch.float32))
    out = torch.empty(mask.shape, dtype=torch.float32, device=mask.device)
    mask_tile_launch(_backend.load_kernels()._threshold_mask_kernel, mask, out, rounded)
    return out


@torch.library.custom_op("inpaint_fused::threshold_mask", mutates_args=())
def threshold_mask_op(mask: torch.Tensor, value: float) -> torch.Tensor:
    """``ThresholdMask`` of a ``(N, h, w)`` mask: ``(N, h, w)`` float32 0/1."""
    return threshold(mask, value)


@threshold_mask_op.register_fake
def _(mask, value):
    return mask.new_empty(mask.shape, dtype=torch.float32)
