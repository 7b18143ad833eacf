"""Device code of ``inpaint_fused::prepare_inpaint``, ``prepare_inpaint_was``, ``grow_mask`` and ``modify_mask``.

Two passes (launched by ``inpaint_fused/ops/prepare_inpaint.py``):

- pass A, ``_box_rows_kernel``: the horizontal half of a separable box dilation (or erosion) of the
  rounded, resized, cropped mask into a uint8 scratch, O(1) per pixel whatever the radius;
- pass B, ``_inpaint_fill_kernel``: the vertical half over that scratch, the noise mask, the gray fill
  and the write of the VAE's input (the only pass when the mask does not grow).

Small images grow their mask in one launch: pass B with ``FUSED`` counts the box from the mask itself,
the vertical half first, instead of reading the scratch.

The running count, the scratch format and its block counts are shared with the diffusers family
(``prepare_diffusers_inpaint.py``) through ``common.py``.
"""

import triton
import triton.language as tl

from .common import (
    _resize_scale,
    _round_to,
    _rounded_mask,
    _running_count,
    _scratch_bits,
    _window_count,
    _with_block_counts,
)


@triton.jit
def _binary_row_segment(
    mask_ptr,
    stride_mh,
    stride_mw,
    h,
    w,
    rows,
    row_ok,
    cols,
    limit,
    off_h,
    off_w,
    scale_h,
    scale_w,
    INVERT: tl.constexpr,
    SAME_SIZE: tl.constexpr,
):
    """The rounded mask (inverted for erosion) at ``cols``; 0 outside ``[0, limit)``."""
    ok = row_ok & (cols >= 0) & (cols < limit)
    bit = _rounded_mask(mask_ptr, stride_mh, stride_mw, h, w, rows, cols, ok, off_h, off_w, scale_h, scale_w, SAME_SIZE)
    if INVERT:
        bit = 1 - bit
    return tl.where(ok, bit, 0)


@triton.jit
def _mask_bits(
    mask_ptr,
    stride_mh,
    stride_mw,
    h,
    w,
    x,
    y,
    rows,
    cols,
    off_h,
    off_w,
    scale_h,
    scale_w,
    INVERT: tl.constexpr,
    SAME_SIZE: tl.constexpr,
):
    """The rounded mask (inverted for erosion) at ``rows`` x ``cols``; 0 outside ``[0, x) x [0, y)``."""
    row_ok = (rows >= 0) & (rows < x)
    return _binary_row_segment(
        mask_ptr, stride_mh, stride_mw, h, w, rows, row_ok, cols, y, off_h, off_w, scale_h, scale_w, INVERT, SAME_SIZE
    )


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
    BLOCK_COUNTS: tl.constexpr,
    SHORT: tl.constexpr,
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
    work, kept small against the run by the launcher). With ``SHORT`` (``win <= BLOCK_W``) each tile
    counts its own first window from the bits it loads anyway, so no count carries from tile to tile
    and the tiles of a run are independent work. Reads the mask (the second read ``win``
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

    # Count of the first window, columns [c_start - before, c_start - before + win), in-image ones only
    # (a window no wider than a tile is counted inside each tile instead: no count carries between tiles).
    z = tl.zeros([BLOCK_H], dtype=tl.int32)
    first_end = tl.minimum(y, c_start - before + win)
    for c0 in range(0, 0 if SHORT else win, BLOCK_W):
        seg = _binary_row_segment(
            mask_ptr,
            stride_mh,
            stride_mw,
            h,
            w,
            rows,
            row_ok,
            c_start - before + c0 + t,
            first_end,
            off_h,
            off_w,
            scale_h,
            scale_w,
            INVERT,
            SAME_SIZE,
        )
        z += tl.sum(seg, axis=1)

    for j0 in range(c_start, c_end, BLOCK_W):
        leaving = _binary_row_segment(
            mask_ptr,
            stride_mh,
            stride_mw,
            h,
            w,
            rows,
            row_ok,
            j0 - before + t,
            y,
            off_h,
            off_w,
            scale_h,
            scale_w,
            INVERT,
            SAME_SIZE,
        )
        entering = _binary_row_segment(
            mask_ptr,
            stride_mh,
            stride_mw,
            h,
            w,
            rows,
            row_ok,
            j0 - before + win + t,
            y,
            off_h,
            off_w,
            scale_h,
            scale_w,
            INVERT,
            SAME_SIZE,
        )
        if SHORT:
            z = tl.sum(tl.where(t < win, leaving, 0), axis=1)
        count, z = _running_count(z, entering, leaving, 1)
        cols = j0 + t
        ok = row_ok & (cols < c_end)
        out = _with_block_counts((count > 0).to(tl.int32), rows, BLOCK_H, BLOCK_COUNTS)
        if KEEP_BASE:
            base = _rounded_mask(
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
                SAME_SIZE,
            )
            out = out | (base << 1)
        tl.store(scratch_ptr + rows * y + cols, out.to(tl.uint8), mask=ok)


@triton.jit
def _inpaint_fill_kernel(
    pix_ptr,
    mask_ptr,
    scratch_ptr,
    noise_ptr,
    out_ptr,
    stride_pb,
    stride_ph,
    stride_pw,
    stride_pc,
    stride_mb,
    stride_mh,
    stride_mw,
    stride_ob,
    stride_oh,
    stride_ow,
    stride_oc,
    n_pix,
    n_masks,
    h,
    w,
    height,
    width,
    x,
    y,
    channels,
    off_h,
    off_w,
    win,
    before,
    rows_per_program,
    GROW: tl.constexpr,
    FUSED: tl.constexpr,
    INVERT: tl.constexpr,
    FILL_FROM_GROWN: tl.constexpr,
    HAS_PIXELS: tl.constexpr,
    VAE_OUT: tl.constexpr,
    SAME_SIZE: tl.constexpr,
    ROWS_BLOCK: tl.constexpr,
    BLOCK_COUNTS: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_W: tl.constexpr,
):
    """Everything after the horizontal pass, for one output image, one column strip, a run of rows.

    Noise mask (``GROW``): the vertical half of the box, ``count > 0`` (dilation) or
    ``count == 0`` of the inverted mask (erosion, outside the image counts as masked), with the
    same radius-independent running count as the horizontal pass (``common._running_count``), here
    down the rows: each tile reads the scratch at ``rows - before`` and ``rows - before + win`` and a
    per-column count carries between tiles. Without ``GROW`` the noise mask is the rounded resized mask itself.
    With ``FUSED`` (one launch, no scratch; ``win <= BLOCK_W``) the box is counted from the mask, the
    vertical half first: per column two running counts down the rows (``lead``, of the column where
    each pixel's window starts, ``trail``, of the column one past its end: four mask reads per pixel,
    from cache but the first), then one running count along the row over them (a warp-wide sum and
    cumsum per row). The ungrown fill is the rounded mask; each run first sums its ``win`` rows.

    Gray fill, exactly as the seed's three in-place ops in the pixel dtype: ``t = p - 0.5``,
    ``t * m`` with ``m = 1 - fill`` (0 or 1, so exact), ``+ 0.5``; each rounded to the pixel
    dtype. ``fill`` is the grown mask (WAS) or the ungrown one (core, scratch bit 1). With
    ``VAE_OUT`` the result goes on through ``2p - 1`` (rounded to the pixel dtype) into an NCHW
    tensor of the VAE dtype, alpha dropped; otherwise channels 3.. are copied through.

    Per pixel it reads the image once (C values), the scratch three times (1 byte each, mostly
    from cache) and writes the output plus 4 bytes of noise mask for programs of a mask's batch.
    Programs split rows as well as columns so that batch 1 fills the GPU; each run of rows first
    sums its window from the horizontal pass's block counts (``common._window_count``). ``BLOCK_W``
    spans the warps so that the scan down the ``BLOCK_H`` rows of a tile stays inside each thread.
    """
    nb = tl.program_id(0).to(tl.int64)
    r_start = tl.program_id(1) * rows_per_program
    cols = tl.program_id(2) * BLOCK_W + tl.arange(0, BLOCK_W)[None, :]
    col_ok = cols < y
    bm = tl.where(n_masks > 1, nb, 0)
    mask_ptr += bm * stride_mb
    scratch_ptr += bm * x * y
    noise_ptr += bm * x * y
    r_end = tl.minimum(r_start + rows_per_program, x)
    # Only the programs of the mask's own batch write the noise mask: (Bm, 1, x, y), not repeated.
    noise_end = tl.where(nb < n_masks, r_end, 0)
    t = tl.arange(0, BLOCK_H)[:, None]
    if HAS_PIXELS:
        pix_ptr += tl.where(n_pix > 1, nb, 0) * stride_pb
        out_ptr += nb * stride_ob
    scale_h = _resize_scale(h, height, mask_ptr.dtype.element_ty)
    scale_w = _resize_scale(w, width, mask_ptr.dtype.element_ty)

    z = tl.zeros([BLOCK_W], dtype=tl.int32)
    if GROW:
        if FUSED:
            col_t = tl.arange(0, BLOCK_W)[None, :]
            z_trail = tl.zeros([BLOCK_W], dtype=tl.int32)
            first = r_start - before
            for f0 in range(first, first + win, BLOCK_H):
                in_window = f0 + t < first + win
                lead_bits = _mask_bits(
                    mask_ptr, stride_mh, stride_mw, h, w, x, y, f0 + t, cols - before, off_h, off_w, scale_h,
                    scale_w, INVERT, SAME_SIZE,
                )  # fmt: skip
                trail_bits = _mask_bits(
                    mask_ptr, stride_mh, stride_mw, h, w, x, y, f0 + t, cols - before + win, off_h, off_w, scale_h,
                    scale_w, INVERT, SAME_SIZE,
                )  # fmt: skip
                z += tl.sum(tl.where(in_window, lead_bits, 0), axis=0)
                z_trail += tl.sum(tl.where(in_window, trail_bits, 0), axis=0)
        else:
            z += _window_count(
                scratch_ptr, r_start - before, win, cols, x, y, BLOCK_H, BLOCK_W, ROWS_BLOCK, BLOCK_COUNTS
            )

    for r0 in range(r_start, r_end, BLOCK_H):
        rows = r0 + t
        ok = (rows < r_end) & col_ok
        if GROW:
            if FUSED:
                # Vertical counts at each window's first column (lead) and one past its last (trail) ...
                lead, z = _running_count(
                    z,
                    _mask_bits(
                        mask_ptr, stride_mh, stride_mw, h, w, x, y, rows - before + win, cols - before, off_h, off_w,
                        scale_h, scale_w, INVERT, SAME_SIZE,
                    ),
                    _mask_bits(
                        mask_ptr, stride_mh, stride_mw, h, w, x, y, rows - before, cols - before, off_h, off_w,
                        scale_h, scale_w, INVERT, SAME_SIZE,
                    ),
                    0,
                )  # fmt: skip
                trail, z_trail = _running_count(
                    z_trail,
                    _mask_bits(
                        mask_ptr, stride_mh, stride_mw, h, w, x, y, rows - before + win, cols - before + win, off_h,
                        off_w, scale_h, scale_w, INVERT, SAME_SIZE,
                    ),
                    _mask_bits(
                        mask_ptr, stride_mh, stride_mw, h, w, x, y, rows - before, cols - before + win, off_h, off_w,
                        scale_h, scale_w, INVERT, SAME_SIZE,
                    ),
                    0,
                )  # fmt: skip
                # ... then the running count along each row over them: the first window sums the lead
                # counts of its win columns, each next one adds a trail count and drops a lead count.
                first_window = tl.sum(tl.where(col_t < win, lead, 0), axis=1)
                count, _ = _running_count(first_window, trail, lead, 1)
            else:
                leaving = _scratch_bits(scratch_ptr, rows - before, cols, x, y)
                entering = _scratch_bits(scratch_ptr, rows - before + win, cols, x, y)
                count, z = _running_count(z, entering, leaving, 0)
            if INVERT:
                grown = (count == 0).to(tl.int32)
            else:
                grown = (count > 0).to(tl.int32)
            if FILL_FROM_GROWN:
                fill = grown
            elif FUSED:
                fill = _rounded_mask(
                    mask_ptr, stride_mh, stride_mw, h, w, rows, cols, ok, off_h, off_w, scale_h, scale_w, SAME_SIZE
                )
            else:
                base = tl.load(scratch_ptr + rows * y + cols, mask=ok, other=0)
                fill = ((base >> 1) & 1).to(tl.int32)
        else:
            grown = _rounded_mask(
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
                SAME_SIZE,
            )
            fill = grown
        noise_ok = (rows < noise_end) & col_ok
        tl.store(noise_ptr + rows * y + cols, grown.to(tl.float32), mask=noise_ok)

        if HAS_PIXELS:
            pix = pix_ptr + (rows + off_h) * stride_ph + (cols + off_w) * stride_pw
            out = out_ptr + rows * stride_oh + cols * stride_ow
            pix_dtype: tl.constexpr = pix_ptr.dtype.element_ty
            compute_dtype: tl.constexpr = tl.float64 if pix_dtype == tl.float64 else tl.float32
            keep = (1 - fill).to(compute_dtype)
            for c in tl.static_range(3):
                p = tl.load(pix + c * stride_pc, mask=ok, other=0.0).to(compute_dtype)
                shifted = _round_to(p - 0.5, pix_dtype)
                filled = _round_to(shifted * keep + 0.5, pix_dtype)
                if VAE_OUT:
                    filled = _round_to(filled * 2.0 - 1.0, pix_dtype)
                    filled = _round_to(filled, out_ptr.dtype.element_ty)
                tl.store(out + c * stride_oc, filled.to(out_ptr.dtype.element_ty), mask=ok)
            if not VAE_OUT:
                for c in range(3, channels):
                    tl.store(out + c * stride_oc, tl.load(pix + c * stride_pc, mask=ok), mask=ok)
