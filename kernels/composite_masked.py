"""ImageCompositeMasked: the whole output image (copy + masked blend in the window) in one pass."""

import triton
import triton.language as tl

from .common import _round_to


@triton.jit
def _round_promoted(x, A: tl.constexpr, B: tl.constexpr):
    """Round to the dtype PyTorch gives a binary op of an ``A`` and a ``B`` tensor: ``A`` when both
    are alike, float32 otherwise (any mix of fp16, bf16 and fp32 promotes to fp32)."""
    if A == B:
        return _round_to(x, A)
    else:
        return x


@triton.jit
def _composite_masked_kernel(
    dst_ptr,
    src_ptr,
    mask_ptr,
    out_ptr,
    stride_db,
    stride_dh,
    stride_dw,
    stride_dc,
    stride_sb,
    stride_sh,
    stride_sw,
    stride_sc,
    stride_mb,
    stride_mh,
    stride_mw,
    n_src,
    n_mask,
    height,
    width,
    top,
    left,
    win_h,
    win_w,
    DST_CHANNELS: tl.constexpr,
    OUT_CHANNELS: tl.constexpr,
    HAS_MASK: tl.constexpr,
    DST_ROWS_DENSE: tl.constexpr,
    SRC_ROWS_DENSE: tl.constexpr,
    BLOCK_ROWS: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """``BLOCK_ROWS`` rows of ``out (B, H, W, OUT_CHANNELS)``, contiguous: the destination, and inside the
    window ``[top, top + win_h) x [left, left + win_w)`` the stock node's blend

        ``m * s + (1 - m) * d``

    as its separate tensor ops: each product, the difference and the sum rounded to the dtype
    PyTorch gives it (``_round_promoted``), the sum then cast to the destination dtype. ``m`` is
    the mask already at the source's size (without ``HAS_MASK``, 1.0), ``s`` the source at
    ``(row - top, col - left)`` of image ``b % n_src`` (mask ``b % n_mask``: the stock
    ``repeat_to_batch_size``). Destination channel ``DST_CHANNELS`` (when ``OUT_CHANNELS`` is one
    more) is the stock alpha fix's channel of 1.0, and a 1-channel source broadcasts over all
    channels (``stride_sc == 0``). ``DST_ROWS_DENSE`` (``SRC_ROWS_DENSE``): the destination's (source's)
    rows are ``width x OUT_CHANNELS`` dense values, read at the flat index ``col * OUT_CHANNELS + ch``.

    Bytes: per output pixel one read of the destination's and one write of the output's channels, and
    inside the window one read of the source's channels and of one mask value: for float32 RGB with a
    mask, 12 + 12 + 4 + 12 = 40 bytes, the minimum for a fresh output. Each program takes ``BLOCK``
    consecutive ``(col, channel)`` elements of each row: dense rows are read and written at the flat
    index with the window bounds on it too, so the compiler sees contiguous, aligned runs and issues
    wide vector accesses; the mask is read per element, but a pixel's channels hit the same address
    (one transaction per warp). (A tiling with whole pixels per thread and the mask read once per pixel
    was slower everywhere on the H200, ``bench/results/sweep-h200-0d79ed8331.log``.)
    """
    b = tl.program_id(2).to(tl.int64)
    row = tl.program_id(1).to(tl.int64) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)[:, None]
    flat = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)[None, :]
    col = flat // OUT_CHANNELS
    ch = flat % OUT_CHANNELS
    ok = (flat < width * OUT_CHANNELS) & (row < height)
    dst_t: tl.constexpr = dst_ptr.dtype.element_ty
    src_t: tl.constexpr = src_ptr.dtype.element_ty
    mask_t: tl.constexpr = mask_ptr.dtype.element_ty

    if DST_ROWS_DENSE:  # the output's layout (so OUT_CHANNELS == DST_CHANNELS): the flat index
        d = tl.load(dst_ptr + b * stride_db + row * stride_dh + flat, mask=ok, other=1.0)
    else:
        d_offset = b * stride_db + row * stride_dh + col * stride_dw + ch * stride_dc
        d = tl.load(dst_ptr + d_offset, mask=ok & (ch < DST_CHANNELS), other=1.0)
    d = d.to(tl.float32)

    # The window, on the flat index where it can be (so a dense row keeps its contiguity and alignment).
    src_row = row - top
    rows_in = (src_row >= 0) & (src_row < win_h)
    inside = ok & rows_in & (flat >= left * OUT_CHANNELS) & (flat < (left + win_w) * OUT_CHANNELS)
    src_col = col - left
    src_b = b % n_src
    if SRC_ROWS_DENSE:
        s_offset = src_b * stride_sb + src_row * stride_sh + (flat - left * OUT_CHANNELS)
    else:
        s_offset = src_b * stride_sb + src_row * stride_sh + src_col * stride_sw + ch * stride_sc
    s = tl.load(src_ptr + s_offset, mask=inside, other=0.0).to(tl.float32)
    if HAS_MASK:
        m_ok = inside  # per element: the channels of a pixel read the same address, one transaction in a warp
        m_offset = (b % n_mask) * stride_mb + src_row * stride_mh + src_col * stride_mw
        m = tl.load(mask_ptr + m_offset, mask=m_ok, other=0.0).to(tl.float32)
    else:
        m = tl.zeros_like(s) + 1.0

    source_portion = _round_promoted(m * s, mask_t, src_t)
    inverse_mask = _round_to(1.0 - m, mask_t)
    destination_portion = _round_promoted(inverse_mask * d, mask_t, dst_t)
    if mask_t == src_t and mask_t == dst_t:
        blended = _round_to(source_portion + destination_portion, mask_t)
    else:
        blended = source_portion + destination_portion
    out = tl.where(inside, _round_to(blended, dst_t), d)
    tl.store(out_ptr + (b * height + row) * width * OUT_CHANNELS + flat, out.to(dst_t), mask=ok)
