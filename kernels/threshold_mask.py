"""ThresholdMask: ``(mask > value).float()`` in one pass."""

import triton
import triton.language as tl


@triton.jit
def _threshold_mask_kernel(
    mask_ptr,
    out_ptr,
    stride_mb,
    stride_mh,
    stride_mw,
    h,
    w,
    value,
    BLOCK_H: tl.constexpr,
    BLOCK_W: tl.constexpr,
):
    """``out = float32(mask > value)`` for a ``(N, h, w)`` mask of any strides into a contiguous output.

    ``value`` arrives already rounded to the mask dtype (PyTorch compares in the tensor's dtype) and
    both sides are compared in float32, which is exact for fp16/bf16/fp32. One read of the mask and
    a 4-byte write per element, where PyTorch's two kernels also write and re-read a bool tensor.
    """
    pid_b = tl.program_id(2).to(tl.int64)
    rows = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)[:, None]
    cols = tl.program_id(0) * BLOCK_W + tl.arange(0, BLOCK_W)[None, :]
    ok = (rows < h) & (cols < w)
    v = tl.load(mask_ptr + pid_b * stride_mb + rows * stride_mh + cols * stride_mw, mask=ok, other=0.0)
    tl.store(out_ptr + pid_b * h * w + rows * w + cols, (v.to(tl.float32) > value).to(tl.float32), mask=ok)
