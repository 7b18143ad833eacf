"""Device helpers shared by the kernels: the rounded, resized, cropped mask, exact dtype rounding, and the
radius-independent box window shared by both kernel families (the running count and the scratch's block counts).

The box passes write a uint8 scratch ``(Bm, x, y)``: bit 0 is the horizontal pass's result; the core
family keeps the ungrown mask in bit 1; bits 2-7 of the first row of each ``ROWS_BLOCK``-row block hold
that block's per-column count of bit 0 (so ``ROWS_BLOCK`` is at most 63), which lets a vertical pass sum
a tall window a block at a time (``_window_count``).
"""

import os

import triton
import triton.language as tl

# Triton's interpreter truncates on ``.to(tl.bfloat16)``; the GPU rounds to nearest even, as PyTorch.
_INTERPRETED: tl.constexpr = tl.constexpr(os.environ.get("TRITON_INTERPRET", "0") == "1")


@triton.jit
def _round_f32_to_bf16(x):
    """fp32 -> fp32 value rounded to the nearest bf16, ties to even (NaN stays NaN), with integer ops."""
    bits = x.to(tl.uint32, bitcast=True)
    lsb = (bits >> 16) & 1
    rounded = ((bits + 0x7FFF + lsb) >> 16) << 16
    rounded = tl.where(x != x, bits | 0x00400000, rounded)
    return rounded.to(tl.float32, bitcast=True)


@triton.jit
def _round_to(x, DTYPE: tl.constexpr):
    """Round a computed value to ``DTYPE``'s precision, keeping it in the compute dtype.

    fp64 values go through fp32 first for half types, as ``c10::Half``/``c10::BFloat16`` do.
    """
    if DTYPE == tl.bfloat16:
        if _INTERPRETED:
            return _round_f32_to_bf16(x.to(tl.float32))
        else:
            return x.to(tl.float32).to(tl.bfloat16).to(tl.float32)
    elif DTYPE == tl.float16:
        return x.to(tl.float32).to(tl.float16).to(tl.float32)
    elif DTYPE == tl.float32:
        return x.to(tl.float32)
    else:
        return x


@triton.jit
def _resize_scale(src_size, dst_size, DTYPE: tl.constexpr):
    """PyTorch's upsample scale ``src_size / dst_size`` for data of ``DTYPE``, in its compute dtype.

    The quotient in double, then rounded to float32 for non-double data, is the correctly rounded quotient
    in each (53 >= 2 * 24 + 2), which is what ``area_pixel_compute_scale<opmath_t>`` computes.
    """
    scale = tl.cast(src_size, tl.float64) / tl.cast(dst_size, tl.float64)
    if DTYPE != tl.float64:
        scale = scale.to(tl.float32)
    return scale


@triton.jit
def _mask_sample(ptr, ok):
    """One mask sample under the NaN/range policy: NaN -> 0, then clamped to [0, 1]; float64 stays float64."""
    compute_dtype: tl.constexpr = tl.float64 if ptr.dtype.element_ty == tl.float64 else tl.float32
    v = tl.load(ptr, mask=ok, other=0.0).to(compute_dtype)
    v = tl.where(v != v, 0.0, v)
    return tl.minimum(tl.maximum(v, 0.0), 1.0)


@triton.jit
def _rounded_mask(
    mask_ptr,
    stride_mh,
    stride_mw,
    h,
    w,
    rows,
    cols,
    ok,
    off_h,
    off_w,
    scale_h,
    scale_w,
    SAME_SIZE: tl.constexpr,
):
    """``round(bilinear_resize(mask))`` at cropped coordinates ``rows`` x ``cols`` as int32 0/1.

    ``mask_ptr`` points at one mask of the batch; ``scale_h``/``scale_w`` come from ``_resize_scale``.
    A float64 mask is resized in float64, as PyTorch does, every other dtype in float32. The resize follows PyTorch's
    ``upsample_bilinear2d`` with ``align_corners=False`` (source index ``scale * (d + 0.5) - 0.5``
    clamped at 0, neighbour index clamped at the last row/column, ``h0 * (w0 * a + w1 * b) +
    h1 * (w0 * c + w1 * d)``). The value is rounded to the mask dtype, as PyTorch stores it, before
    ``round`` (half to even: 0.5 -> 0, which for values in [0, 1] is ``v > 0.5``).
    """
    full_r = rows + off_h
    full_c = cols + off_w
    if SAME_SIZE:
        v = _mask_sample(mask_ptr + full_r * stride_mh + full_c * stride_mw, ok)
    else:
        compute_dtype: tl.constexpr = tl.float64 if mask_ptr.dtype.element_ty == tl.float64 else tl.float32
        src_h = tl.maximum(scale_h * (full_r.to(compute_dtype) + 0.5) - 0.5, 0.0)
        src_w = tl.maximum(scale_w * (full_c.to(compute_dtype) + 0.5) - 0.5, 0.0)
        h0 = src_h.to(tl.int32)
        w0 = src_w.to(tl.int32)
        lam_h = src_h - h0.to(compute_dtype)
        lam_w = src_w - w0.to(compute_dtype)
        h1 = h0 + (h0 < h - 1).to(tl.int32)
        w1 = w0 + (w0 < w - 1).to(tl.int32)
        a = _mask_sample(mask_ptr + h0 * stride_mh + w0 * stride_mw, ok)
        b = _mask_sample(mask_ptr + h0 * stride_mh + w1 * stride_mw, ok)
        c = _mask_sample(mask_ptr + h1 * stride_mh + w0 * stride_mw, ok)
        d = _mask_sample(mask_ptr + h1 * stride_mh + w1 * stride_mw, ok)
        v = (1.0 - lam_h) * ((1.0 - lam_w) * a + lam_w * b) + lam_h * ((1.0 - lam_w) * c + lam_w * d)
    v = _round_to(v, mask_ptr.dtype.element_ty)
    return (v > 0.5).to(tl.int32)


@triton.jit
def _running_count(z, entering, leaving, AXIS: tl.constexpr):
    """Box-window counts at every position of a tile along ``AXIS``, whatever the window's length.

    ``z`` holds, per line across ``AXIS``, the count of the window that starts at the tile's first
    position; ``leaving`` the bits at each window's first position, ``entering`` those one past each
    window's end. ``count(t) = z + exclusive_cumsum(entering - leaving)(t)``: one tile-wide cumsum, no
    shifts of register vectors, no halo. Returns ``(count, z)`` with ``z`` advanced past the tile.
    """
    step = entering - leaving
    count = tl.expand_dims(z, AXIS) + tl.cumsum(step, axis=AXIS) - step
    return count, z + tl.sum(step, axis=AXIS)


@triton.jit
def _with_block_counts(bits, rows, ROWS_BLOCK: tl.constexpr, BLOCK_COUNTS: tl.constexpr):
    """Scratch bytes for a tile of exactly one ``ROWS_BLOCK``-row block: ``bits`` (0/1) in bit 0 and, with
    ``BLOCK_COUNTS``, in the block's first row the block's per-column count of them in bits 2-7.

    The count is a reduction across the tile's rows (across warps): windows too short to hold whole
    blocks (``BLOCK_COUNTS`` off, see ``LaunchConfig.block_counts``) skip it.
    """
    if BLOCK_COUNTS:
        block_count = tl.expand_dims(tl.sum(bits, axis=0), 0)
        return tl.where(rows % ROWS_BLOCK == 0, bits | (block_count << 2), bits)
    else:
        return bits


@triton.jit
def _scratch_bits(scratch_ptr, rows, cols, limit, y):
    """Bit 0 of the scratch ``(x, y)`` at ``rows`` x ``cols``; 0 outside rows ``[0, limit)`` and columns ``[0, y)``.

    Row offsets take the type of ``rows``: pass int64 rows where ``x * y`` may pass 2**31.
    """
    ok = (rows >= 0) & (rows < limit) & (cols < y)
    v = tl.load(scratch_ptr + rows * y + cols, mask=ok, other=0)
    return (v & 1).to(tl.int32)


@triton.jit
def _window_count(
    scratch_ptr,
    start,
    win,
    cols,
    x,
    y,
    BLOCK_H: tl.constexpr,
    BLOCK_W: tl.constexpr,
    ROWS_BLOCK: tl.constexpr,
    BLOCK_COUNTS: tl.constexpr,
):
    """Per column, the count of bit 0 over rows ``[start, start + win)`` clipped to the image.

    Whole ``ROWS_BLOCK``-row blocks come from the counts the horizontal pass left in bits 2-7 of
    their first row; only the partial blocks at both ends are summed row by row. About
    ``win / ROWS_BLOCK + 2 * ROWS_BLOCK`` one-byte reads per column instead of ``win``. Without
    ``BLOCK_COUNTS`` (short windows) every row of the window is summed.
    """
    lo = tl.maximum(start, 0)
    hi = tl.maximum(tl.minimum(start + win, x), lo)
    t = tl.arange(0, BLOCK_H)[:, None]
    z = tl.zeros([BLOCK_W], dtype=tl.int32)
    if not BLOCK_COUNTS:
        for r0 in range(lo, hi, BLOCK_H):
            z += tl.sum(_scratch_bits(scratch_ptr, r0 + t, cols, hi, y), axis=0)
        return z
    first_block = tl.minimum((lo + ROWS_BLOCK - 1) // ROWS_BLOCK * ROWS_BLOCK, hi)
    last_block = tl.maximum(hi // ROWS_BLOCK * ROWS_BLOCK, first_block)
    for r0 in range(lo, first_block, BLOCK_H):
        z += tl.sum(_scratch_bits(scratch_ptr, r0 + t, cols, first_block, y), axis=0)
    for r0 in range(last_block, hi, BLOCK_H):
        z += tl.sum(_scratch_bits(scratch_ptr, r0 + t, cols, hi, y), axis=0)
    for b0 in range(first_block, last_block, BLOCK_H * ROWS_BLOCK):
        rows = b0 + t * ROWS_BLOCK
        ok = (rows < last_block) & (cols < y)
        counts = tl.load(scratch_ptr + rows * y + cols, mask=ok, other=0) >> 2
        z += tl.sum(counts.to(tl.int32), axis=0)
    return z
