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
    CHANNELS_P2: tl.constexpr,
    HAS_MASK: tl.constexpr,
    DST_ROWS_DENSE: tl.constexpr,
    SRC_ROWS_DENSE: tl.constexpr,
    BLOCK_ROWS: tl.constexpr,
    BLOCK_PIX: tl.constexpr,
):
    """A ``BLOCK_ROWS x BLOCK_PIX`` tile of pixels of ``out (B, H, W, OUT_CHANNELS)``, contiguous: the
    destination, and inside the window ``[top, top + win_h) x [left, left + win_w)`` the stock node's blend

        ``m * s + (1 - m) * d``

    as its separate tensor ops: each product, the difference and the sum rounded to the dtype
    PyTorch gives it (``_round_promoted``), the sum then cast to the destination dtype. ``m`` is
    the mask already at the source's size (without ``HAS_MASK``, 1.0 in the dtype of ``mask_ptr``,
    which then points at the source: the stock ``ones_like(source)``), ``s`` the source at
    ``(row - top, col - left)`` of image ``b % n_src`` (mask ``b % n_mask``: the stock
    ``repeat_to_batch_size``). Destination channel ``DST_CHANNELS`` (when ``OUT_CHANNELS`` is one
    more) is the stock alpha fix's channel of 1.0, and a 1-channel source broadcasts over all
    channels (``stride_sc == 0``). ``DST_ROWS_DENSE`` (``SRC_ROWS_DENSE``): the destination's (source's)
    pixels are ``OUT_CHANNELS`` dense values each, read at ``col * OUT_CHANNELS + ch`` (known contiguous).

    Bytes: per output pixel one read of the destination's and one write of the output's channels, and
    inside the window one read of the source's channels and of one mask value: for float32 RGB with a
    mask, 12 + 12 + 4 + 12 = 40 bytes, the minimum for a fresh output. Tiling: the pixel's channels are
    the tile's last axis (padded to ``CHANNELS_P2``), so each thread holds whole pixels, the mask value is
    loaded once per pixel and broadcast to its channels, and a warp's loads and stores cover consecutive
    pixels of a row (coalesced, ``OUT_CHANNELS`` elements apart); ``BLOCK_ROWS`` rows per program keep
    more bytes in flight per program on wide images and fewer programs on small ones.
    """
    b = tl.program_id(2).to(tl.int64)
    row = tl.program_id(1).to(tl.int64) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)[:, None, None]
    col = tl.program_id(0) * BLOCK_PIX + tl.arange(0, BLOCK_PIX)[None, :, None]
    ch = tl.arange(0, CHANNELS_P2)[None, None, :]
    pixel_ok = (row < height) & (col < width)
    ok = pixel_ok & (ch < OUT_CHANNELS)
    dst_t: tl.constexpr = dst_ptr.dtype.element_ty
    src_t: tl.constexpr = src_ptr.dtype.element_ty
    mask_t: tl.constexpr = mask_ptr.dtype.element_ty

    if DST_ROWS_DENSE:
        d_offset = b * stride_db + row * stride_dh + col * OUT_CHANNELS + ch
    else:
        d_offset = b * stride_db + row * stride_dh + col * stride_dw + ch * stride_dc
    d = tl.load(dst_ptr + d_offset, mask=ok & (ch < DST_CHANNELS), other=1.0)
    d = d.to(tl.float32)

    src_row = row - top
    src_col = col - left
    inside_pixel = pixel_ok & (src_row >= 0) & (src_row < win_h) & (src_col >= 0) & (src_col < win_w)
    inside = inside_pixel & (ch < OUT_CHANNELS)
    src_b = b % n_src
    if SRC_ROWS_DENSE:
        s_offset = src_b * stride_sb + src_row * stride_sh + src_col * OUT_CHANNELS + ch
    else:
        s_offset = src_b * stride_sb + src_row * stride_sh + src_col * stride_sw + ch * stride_sc
    s = tl.load(src_ptr + s_offset, mask=inside, other=0.0).to(tl.float32)
    if HAS_MASK:
        mask_b = b % n_mask
        m_offset = mask_b * stride_mb + src_row * stride_mh + src_col * stride_mw
        m = tl.load(mask_ptr + m_offset, mask=inside_pixel, other=0.0)
        m = m.to(tl.float32)  # (rows, pixels, 1): one value per pixel, broadcast to its channels
    else:
        m = tl.full([BLOCK_ROWS, BLOCK_PIX, 1], 1.0, tl.float32)

    source_portion = _round_promoted(m * s, mask_t, src_t)
    inverse_mask = _round_to(1.0 - m, mask_t)
    destination_portion = _round_promoted(inverse_mask * d, mask_t, dst_t)
    if mask_t == src_t and mask_t == dst_t:
        blended = _round_to(source_portion + destination_portion, mask_t)
    else:
        blended = source_portion + destination_portion
    out = tl.where(inside, _round_to(blended, dst_t), d)
    out_offset = ((b * height + row) * width + col) * OUT_CHANNELS + ch
    tl.store(out_ptr + out_offset, out.to(dst_t), mask=ok)
