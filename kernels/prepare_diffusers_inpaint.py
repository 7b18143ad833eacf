"""Device code of ``inpaint_fused::prepare_diffusers_inpaint``: binarised mask, masked image in the VAE's
input, latent-size mask (launched by ``inpaint_fused/ops/prepare_diffusers_inpaint.py``).

The diffusers inpaint pipelines (``StableDiffusionInpaintPipeline``, ``StableDiffusionXLInpaintPipeline``,
``FluxInpaintPipeline``) binarise the processed mask (``m < 0.5 -> 0``, ``m >= 0.5 -> 1``, NaN left
as is), form ``masked_image = image * (mask < 0.5)`` (``FluxFillPipeline``: ``image * (1 - mask)``),
cast it to the VAE's dtype on the device, and resize the mask to latent size with
``F.interpolate(mode="nearest")``. These kernels do that in one pass over
the image; an optional ComfyUI-style ``g x g`` box growth of the binarised mask adds a horizontal
pass into a uint8 scratch, in the core family's format and with its running count (``common``).
"""

import triton
import triton.language as tl

from .common import _round_to, _running_count, _scratch_bits, _window_count, _with_block_counts


@triton.jit
def _masked_bits(mask_ptr, stride_mh, stride_mw, rows, cols, ok):
    """1 where the pipeline counts the mask as set, ``not (m < 0.5)`` (NaN counts as set), else 0."""
    m = tl.load(mask_ptr + rows.to(tl.int64) * stride_mh + cols * stride_mw, mask=ok, other=0.0)
    compute_dtype: tl.constexpr = tl.float64 if mask_ptr.dtype.element_ty == tl.float64 else tl.float32
    bits = tl.where(m.to(compute_dtype) < 0.5, 0, 1)
    return tl.where(ok, bits, 0)


@triton.jit
def _diffusers_grow_rows_kernel(
    mask_ptr,
    scratch_ptr,
    stride_mb,
    stride_mh,
    stride_mw,
    height,
    width,
    win,
    before,
    cols_per_program,
    BLOCK_H: tl.constexpr,
    BLOCK_COUNTS: tl.constexpr,
    BLOCK_W: tl.constexpr,
):
    """Horizontal half of the box growth of the binarised mask into a uint8 scratch ``(Bm, H, W)``.

    Bit 0 of scratch ``[r, j]`` is 1 when any binarised bit in columns ``[j - before, j - before + win)``
    of row ``r`` is set; columns outside the image count as 0. Bits 2-7 of the first row of each
    ``BLOCK_H``-row block hold that block's per-column count of bit 0, from which the image pass sums
    a tall window a block at a time (the core family's scratch format, ``common._with_block_counts``).
    The count is radius-independent (``common._running_count``): with ``a = j0 - before`` the start of
    a tile's first window, the bits leaving are those at ``a + t``, those entering at ``a + win + t``.

    One program owns ``BLOCK_H`` rows of one mask and ``cols_per_program`` columns, which it walks left
    to right after summing its first window (``win`` columns: the only radius-dependent work, kept small
    against the run by the launcher), as the core family's ``_box_rows_kernel``. Reads the mask twice
    (the second read ``win`` columns behind, mostly from cache) and writes 1 byte per pixel.
    """
    bm = tl.program_id(0).to(tl.int64)
    rows = tl.program_id(1).to(tl.int64) * BLOCK_H + tl.arange(0, BLOCK_H)[:, None]
    c_start = tl.program_id(2) * cols_per_program
    c_end = tl.minimum(c_start + cols_per_program, width)
    row_ok = rows < height
    mask_ptr += bm * stride_mb
    scratch_ptr += bm * height * width
    t = tl.arange(0, BLOCK_W)[None, :]

    # Count of the first window, columns [c_start - before, c_start - before + win), in-image ones only.
    z = tl.zeros([BLOCK_H], dtype=tl.int32)
    first_end = tl.minimum(width, c_start - before + win)
    for c0 in range(0, win, BLOCK_W):
        cols = c_start - before + c0 + t
        ok = row_ok & (cols >= 0) & (cols < first_end)
        z += tl.sum(_masked_bits(mask_ptr, stride_mh, stride_mw, rows, cols, ok), axis=1)

    for j0 in range(c_start, c_end, BLOCK_W):
        lead = j0 - before + t
        trail = lead + win
        leaving = _masked_bits(mask_ptr, stride_mh, stride_mw, rows, lead, row_ok & (lead >= 0) & (lead < width))
        entering = _masked_bits(mask_ptr, stride_mh, stride_mw, rows, trail, row_ok & (trail >= 0) & (trail < width))
        count, z = _running_count(z, entering, leaving, 1)
        cols = j0 + t
        out = _with_block_counts((count > 0).to(tl.int32), rows, BLOCK_H, BLOCK_COUNTS)
        tl.store(scratch_ptr + rows * width + cols, out.to(tl.uint8), mask=row_ok & (cols < c_end))


@triton.jit
def _nearest_inverse(src_positions, scale, src_size, dst_size):
    """For source positions ``p``, the destination index ``i`` that nearest resize samples from ``p``.

    PyTorch's nearest resize reads source ``min(floor(float(i) * scale), src_size - 1)`` for
    destination ``i`` (``scale = float32(src_size / dst_size)``). With ``scale >= 1`` at most one
    ``i`` maps to each ``p``; it is within one of ``p / scale``, and each candidate is checked with
    PyTorch's own fp32 formula, so division rounding cannot pick a wrong one. Returns ``(i, hit)``.
    """
    guess = (src_positions.to(tl.float32) / scale).to(tl.int32)
    found = tl.zeros_like(guess)
    hit = found != 0
    for d in tl.static_range(3):
        cand = guess + (d - 1)
        src = tl.minimum((cand.to(tl.float32) * scale).to(tl.int32), src_size - 1)
        match = (cand >= 0) & (cand < dst_size) & (src == src_positions)
        found = tl.where(match, cand, found)
        hit = hit | match
    return found, hit


@triton.jit
def _diffusers_inpaint_kernel(
    image_ptr,
    mask_ptr,
    scratch_ptr,
    out_ptr,
    latent_ptr,
    stride_ib,
    stride_ic,
    stride_ih,
    stride_iw,
    stride_mb,
    stride_mh,
    stride_mw,
    stride_ob,
    stride_oc,
    stride_oh,
    stride_ow,
    stride_lb,
    stride_lh,
    stride_lw,
    n_images,
    n_masks,
    height,
    width,
    latent_h,
    latent_w,
    scale_h,
    scale_w,
    win,
    before,
    rows_per_program,
    GROW: tl.constexpr,
    ONE_MINUS: tl.constexpr,
    ROWS_BLOCK: tl.constexpr,
    BLOCK_COUNTS: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_W: tl.constexpr,
):
    """Masked image into the VAE's input and the latent-size mask, for one output image, one column strip.

    Both outputs are written through strides, so they can take the layout the stock expressions'
    results would have (a channels-last image gives a channels-last masked image).

    Per pixel, ``keep = mask < 0.5`` (NaN is not kept) and ``out = image * keep`` computed in the
    image's dtype (exact: a product with 0 or 1), then rounded once to the output dtype, as
    ``(image * (mask < 0.5)).to(dtype)``. ``ONE_MINUS`` keeps ``1 - binarize(mask)`` instead, as
    ``FluxFillPipeline``'s ``image * (1 - mask)``: the same but for NaN, which then propagates.
    Pixels that nearest resize samples for the latent mask write ``binarize(mask)`` there: 0 below
    0.5, 1 from 0.5 up, NaN kept, in the output dtype.

    With ``GROW`` the mask is the box-grown binarised mask: the vertical half of the box over the
    scratch of ``_diffusers_grow_rows_kernel`` with a running count down the rows (each tile reads
    the scratch at ``rows - before`` and ``rows - before + win``), so the cost does not depend on the
    growth. Growth yields exact 0/1, used for both outputs.

    Reads 3 image values and 1 mask value (or 3 scratch bytes, mostly cached) per pixel, writes 3
    output values; the latent mask adds 1/(f*f) of a value per pixel. Programs split rows as well as
    columns so that a single image fills the GPU; with growth each run of rows first sums its window
    from the horizontal pass's ``ROWS_BLOCK``-row block counts (``common._window_count``).
    """
    nb = tl.program_id(0).to(tl.int64)
    r_start = tl.program_id(1).to(tl.int64) * rows_per_program
    cols = tl.program_id(2) * BLOCK_W + tl.arange(0, BLOCK_W)[None, :]
    col_ok = cols < width
    bm = tl.where(n_masks > 1, nb, 0)
    bi = tl.where(n_images > 1, nb, 0)
    mask_ptr += bm * stride_mb
    scratch_ptr += bm * height * width
    latent_ptr += bm * stride_lb
    image_ptr += bi * stride_ib
    out_ptr += nb * stride_ob
    r_end = tl.minimum(r_start + rows_per_program, height)
    # Only the programs of a mask's own batch write the latent mask: (Bm, 1, h, w), not repeated.
    latent_end = tl.where(nb < n_masks, r_end, 0)
    t = tl.arange(0, BLOCK_H)[:, None]

    lat_col, col_hit = _nearest_inverse(cols, scale_w, width, latent_w)
    image_dtype: tl.constexpr = image_ptr.dtype.element_ty
    out_dtype: tl.constexpr = out_ptr.dtype.element_ty
    compute_dtype: tl.constexpr = tl.float64 if image_dtype == tl.float64 else tl.float32
    mask_compute: tl.constexpr = tl.float64 if mask_ptr.dtype.element_ty == tl.float64 else tl.float32

    z = tl.zeros([BLOCK_W], dtype=tl.int32)
    if GROW:
        z += _window_count(
            scratch_ptr, r_start - before, win, cols, height, width, BLOCK_H, BLOCK_W, ROWS_BLOCK, BLOCK_COUNTS
        )

    for r0 in range(r_start, r_end, BLOCK_H):
        rows = r0 + t
        ok = (rows < r_end) & col_ok
        if GROW:
            leaving = _scratch_bits(scratch_ptr, rows - before, cols, height, width)
            entering = _scratch_bits(scratch_ptr, rows - before + win, cols, height, width)
            count, z = _running_count(z, entering, leaving, 0)
            keep = (count == 0).to(compute_dtype)
            latent_value = (count > 0).to(tl.float32)
        else:
            m = tl.load(mask_ptr + rows.to(tl.int64) * stride_mh + cols * stride_mw, mask=ok, other=0.0)
            m = m.to(mask_compute)
            latent_value = tl.where(m < 0.5, 0.0, tl.where(m >= 0.5, 1.0, m))
            if ONE_MINUS:
                keep = (1.0 - latent_value).to(compute_dtype)
            else:
                keep = (m < 0.5).to(compute_dtype)

        pix = image_ptr + rows.to(tl.int64) * stride_ih + cols * stride_iw
        out = out_ptr + rows.to(tl.int64) * stride_oh + cols * stride_ow
        for c in tl.static_range(3):
            p = tl.load(pix + c * stride_ic, mask=ok, other=0.0).to(compute_dtype)
            masked = _round_to(_round_to(p * keep, image_dtype), out_dtype)
            tl.store(out + c * stride_oc, masked.to(out_dtype), mask=ok)

        lat_row, row_hit = _nearest_inverse(rows, scale_h, height, latent_h)
        write = row_hit & col_hit & ok & (rows < latent_end)
        latent_value = _round_to(latent_value, latent_ptr.dtype.element_ty)
        tl.store(
            latent_ptr + lat_row.to(tl.int64) * stride_lh + lat_col * stride_lw,
            latent_value.to(latent_ptr.dtype.element_ty),
            mask=write,
        )
