"""FeatherMask: the four linear ramps of ComfyUI's ``FeatherMask`` in one pass."""

import triton
import triton.language as tl

from .common import _round_to


@triton.jit
def _ramp_rate(index, count):
    """``(index + 1) / count`` divided in float64, then rounded to float32.

    The stock node divides Python floats (doubles) and multiplies a float32 tensor by the result,
    which PyTorch first rounds to float32 (its opmath type); the kernel takes the same two roundings.
    A ``count`` of 0 (no ramp, the rate unused) divides by 1 instead.
    """
    return ((index + 1).to(tl.float64) / tl.maximum(count, 1).to(tl.float64)).to(tl.float32)


@triton.jit
def _feather_mask_kernel(
    mask_ptr,
    out_ptr,
    stride_mb,
    stride_mh,
    stride_mw,
    h,
    w,
    left,
    top,
    right,
    bottom,
    BLOCK_H: tl.constexpr,
    BLOCK_W: tl.constexpr,
):
    """``out = mask * l(c) * r(c) * t(r) * b(r)``, each product rounded to the mask dtype in that order.

    ``l(c) = (c + 1) / left`` for columns ``c < left``; the right ramp scales column ``-x`` by
    ``(x + 1) / right`` for ``x < right``, and ``-0`` is column 0: column 0 gets ``1 / right``,
    column ``w - x`` (``x >= 1``) gets ``(x + 1) / right``. Rows likewise with ``top``/``bottom``.
    Factors that do not apply are 1.0 (an exact product). ``left``..``bottom`` arrive clamped to
    the mask size. Reads and writes each mask element once (2 x its size in bytes); a 2-D tile
    keeps the per-column and per-row factors as vectors computed once per tile.
    """
    pid_b = tl.program_id(2).to(tl.int64)
    rows = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)[:, None]
    cols = tl.program_id(0) * BLOCK_W + tl.arange(0, BLOCK_W)[None, :]
    ok = (rows < h) & (cols < w)
    dtype: tl.constexpr = mask_ptr.dtype.element_ty
    v = tl.load(mask_ptr + pid_b * stride_mb + rows * stride_mh + cols * stride_mw, mask=ok, other=0.0)
    v = v.to(tl.float32)

    rate_left = tl.where(cols < left, _ramp_rate(cols, left), 1.0)
    from_right = tl.where(cols == 0, 0, w - cols)
    rate_right = tl.where(from_right < right, _ramp_rate(from_right, right), 1.0)
    rate_top = tl.where(rows < top, _ramp_rate(rows, top), 1.0)
    from_bottom = tl.where(rows == 0, 0, h - rows)
    rate_bottom = tl.where(from_bottom < bottom, _ramp_rate(from_bottom, bottom), 1.0)

    v = _round_to(v * rate_left, dtype)
    v = _round_to(v * rate_right, dtype)
    v = _round_to(v * rate_top, dtype)
    v = _round_to(v * rate_bottom, dtype)
    tl.store(out_ptr + pid_b * h * w + rows * w + cols, v.to(dtype), mask=ok)
