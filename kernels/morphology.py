"""Pass A of a grown mask: the horizontal half of a separable box dilation, O(1) per pixel."""

import triton
import triton.language as tl

from .common import _resize_scale, _rounded_mask, _running_count, _with_block_counts


@triton.jit
def _binary_row_segment(
    mask_ptr, stride_mh, stride_mw, h, w, rows, row_ok, cols, limit, off_h, off_w, scale_h, scale_w,
    INVERT: tl.constexpr, SAME_SIZE: tl.constexpr,
):
    """The rounded mask (inverted for erosion) at ``cols``; 0 outside ``[0, limit)``."""
    ok = row_ok & (cols >= 0) & (cols < limit)
    bit = _rounded_mask(
        mask_ptr, stride_mh, stride_mw, h, w, rows, cols, ok, off_h, off_w, scale_h, scale_w, SAME_SIZE
    )
    if INVERT:
        bit = 1 - bit
    return tl.where(ok, bit, 0)


@triton.jit
def _box_rows_kernel(
    mask_ptr,
    scratch_ptr,
    stride_mb,
    stride_mh,
    stride_mw,
    h,
    w,
    height,
    width,
    x,
    y,
    off_h,
    off_w,
    win,
    before,
    cols_per_program,
    INVERT: tl.constexpr,
    KEEP_BASE: tl.constexpr,
    SAME_SIZE: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_W: tl.constexpr,
):
    """Horizontal box dilation of the rounded mask into a uint8 scratch ``(Bm, x, y)``.

    For output column ``j`` the window is columns ``[j - before, j - before + win)``; bit 0 of the
    scratch is 1 when any (inverted, for erosion) mask bit in it is set. Bit 1 keeps the rounded
    mask itself when ``KEEP_BASE`` (the core node fills with the ungrown mask). Bits 2-7 of the
    first row of each ``BLOCK_H``-row block hold that block's count of bit 0 per column, so that the
    vertical pass can sum a tall window a block at a time.

    The mask ``(Bm, h, w)`` is resized to the image's ``height x width`` and cropped to ``x x y`` at
    ``(off_h, off_w)``. The window count is radius-independent (``common._running_count``): with
    ``a = j0 - before`` the start of a tile's first window, the bits leaving are those at ``a + t``,
    those entering at ``a + win + t``. One tile-wide cumsum per tile whatever ``win`` is.

    One program owns ``BLOCK_H`` rows of one mask and ``cols_per_program`` columns, which it walks
    left to right after summing its first window (``win`` columns: the only radius-dependent
    work, kept small against the run by the launcher). Reads the mask (the second read ``win``
    columns behind, from cache), writes 1 byte per pixel.
    """
    bm = tl.program_id(0).to(tl.int64)
    rows = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)[:, None]
    c_start = tl.program_id(2) * cols_per_program
    c_end = tl.minimum(c_start + cols_per_program, y)
    row_ok = rows < x
    mask_ptr += bm * stride_mb
    scratch_ptr += bm * x * y
    t = tl.arange(0, BLOCK_W)[None, :]
    scale_h = _resize_scale(h, height, mask_ptr.dtype.element_ty)
    scale_w = _resize_scale(w, width, mask_ptr.dtype.element_ty)

    # Count of the first window, columns [c_start - before, c_start - before + win), in-image ones only.
    z = tl.zeros([BLOCK_H], dtype=tl.int32)
    first_end = tl.minimum(y, c_start - before + win)
    for c0 in range(0, win, BLOCK_W):
        seg = _binary_row_segment(
            mask_ptr, stride_mh, stride_mw, h, w, rows, row_ok, c_start - before + c0 + t, first_end,
            off_h, off_w, scale_h, scale_w, INVERT, SAME_SIZE,
        )
        z += tl.sum(seg, axis=1)

    for j0 in range(c_start, c_end, BLOCK_W):
        leaving = _binary_row_segment(
            mask_ptr, stride_mh, stride_mw, h, w, rows, row_ok, j0 - before + t, y,
            off_h, off_w, scale_h, scale_w, INVERT, SAME_SIZE,
        )
        entering = _binary_row_segment(
            mask_ptr, stride_mh, stride_mw, h, w, rows, row_ok, j0 - before + win + t, y,
            off_h, off_w, scale_h, scale_w, INVERT, SAME_SIZE,
        )
        count, z = _running_count(z, entering, leaving, 1)
        cols = j0 + t
        ok = row_ok & (cols < c_end)
        out = _with_block_counts((count > 0).to(tl.int32), rows, BLOCK_H)
        if KEEP_BASE:
            base = _rounded_mask(
                mask_ptr, stride_mh, stride_mw, h, w, rows, cols, ok, off_h, off_w, scale_h, scale_w,
                SAME_SIZE,
            )
            out = out | (base << 1)
        tl.store(scratch_ptr + rows * y + cols, out.to(tl.uint8), mask=ok)
