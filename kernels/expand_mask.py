"""Grey dilation of a mask by a square or a diamond, O(1) per pixel whatever the radius.

Two kernels. ``_running_max_kernel``: a running maximum along one axis (van Herk/Gil-Werman),
run along rows then columns for a square. The diamond ``|dx| + |dy| <= e`` is a square in the
rotated coordinates ``u = i + j``, ``v = i - j`` on one parity lattice, so it reduces to the
same running maxima (the first one reading the image through the rotation), then
``_diamond_taps_kernel`` (see ``inpaint_fused.ops.expand_mask``). Erosion is the dilation of
the negated mask (``NEGATE``): negation is exact, values are only selected, so every result is
one of the input values.
NaN propagates: a window holding a NaN gives NaN. ``COMPUTE`` is float64 for float64 masks and
float32 otherwise (float16/bfloat16 convert both ways exactly); buffers keep the mask's dtype.
"""

import triton
import triton.language as tl

from .common import _INTERPRETED


@triton.jit
def _line_source(src_ptr, stride_sl, stride_sp, line, lines_ok, j, n, parity, img_h, img_w, ROTATED: tl.constexpr):
    """Pointers to element ``j`` of each line, and where it exists.

    Plain: ``src[line, j]``, ``j`` in ``[0, n)``. ``ROTATED``: cell ``(line, j)`` of parity class
    ``parity`` of the rotated grid (see ``_diamond_taps_kernel``), i.e. pixel ``(i, jj)`` of the
    ``img_h x img_w`` image (strides ``stride_sl``, ``stride_sp``) with ``u = 2 * line + parity =
    i + jj + 2`` and ``v = 2 * j + (parity + img_w + 1) % 2 = i - jj + img_w + 1``; cells where no
    pixel lands do not exist.
    """
    if ROTATED:
        u = 2 * line + parity
        v = 2 * j + (parity + img_w + 1) % 2
        i = (u + v - img_w - 3) // 2
        jj = (u - v + img_w - 1) // 2
        ok = lines_ok & (j >= 0) & (j < n) & (i >= 0) & (i < img_h) & (jj >= 0) & (jj < img_w)
        return src_ptr + i * stride_sl + jj * stride_sp, ok
    else:
        return src_ptr + line * stride_sl + j * stride_sp, lines_ok & (j >= 0) & (j < n)


@triton.jit
def _segmented_max(value_a, start_a, value_b, start_b):
    """Combine of a segmented running maximum: ``b`` follows ``a``; a segment start in ``b`` cuts ``a`` off."""
    return tl.where(
        start_b != 0, value_b, tl.maximum(value_a, value_b, propagate_nan=tl.PropagateNan.ALL)
    ), start_a | start_b


@triton.jit
def _scan_tile(ptrs, ok, q, dist, carry, NEGATE: tl.constexpr, COMPUTE: tl.constexpr, LOG_T: tl.constexpr):
    """Running maximum over the ``[BLOCK_T, BLOCK_L]`` tile of padded positions ``q`` in scan order.

    Loads ``ptrs`` where ``ok``, ``-inf`` elsewhere (the padding of the lines). ``dist`` is how many
    positions of its block precede ``q`` in scan order; ``carry`` (per line) the running maximum
    the previous tile left. Inside the tile, one segmented scan (``tl.associative_scan``, segments
    starting where ``dist == 0``), so each position holds the maximum from its block's start, or
    from the tile's start where the block began in an earlier tile, which then takes the carry.
    Returns the tile and the new carry.
    """
    v = tl.load(ptrs, mask=ok, other=0.0).to(COMPUTE)
    if NEGATE:
        v = -v
    run = tl.where(ok, v, float("-inf"))
    t = tl.arange(0, q.shape[0])[:, None]
    if _INTERPRETED:
        # The same scan as LOG_T Hillis-Steele steps (the interpreter runs associative_scan element by
        # element, ten times slower): max with the element 2**k back while it is in the same block.
        depth = tl.minimum(dist, t)
        for k in tl.static_range(LOG_T):
            back = tl.gather(run, tl.broadcast_to(tl.maximum(t - (1 << k), 0), run.shape), 0)
            run = tl.where(depth >= (1 << k), tl.maximum(run, back, propagate_nan=tl.PropagateNan.ALL), run)
    else:
        starts = tl.broadcast_to((dist == 0).to(tl.int32), run.shape)
        run, _ = tl.associative_scan((run, starts), 0, _segmented_max)
    run = tl.where(dist > t, tl.maximum(carry[None, :], run, propagate_nan=tl.PropagateNan.ALL), run)
    last = t == q.shape[0] - 1
    return run, tl.sum(tl.where(last, run, 0.0), axis=0)


@triton.jit
def _running_max_kernel(
    src_ptr,
    dst_ptr,
    stride_sb,
    stride_sl,
    stride_sp,
    stride_db,
    stride_dl,
    stride_dp,
    lines,
    n,
    radius,
    seg_len,
    img_h,
    img_w,
    NEGATE: tl.constexpr,
    ROTATED: tl.constexpr,
    COMPUTE: tl.constexpr,
    BLOCK_T: tl.constexpr,
    BLOCK_L: tl.constexpr,
    LOG_T: tl.constexpr,
):
    """``dst[b, l, j] = max(src[b, l, j - radius : j + radius + 1])`` clipped to the line.

    Lines are ``(batch, lines, n)`` strided views (rows of an image, or its columns); positions
    are padded by ``radius`` on both sides with ``-inf``. Van Herk/Gil-Werman: cut the padded
    line into blocks of ``win = 2 * radius + 1``; with ``h`` the maximum from a position to the
    end of its block and ``g`` the maximum from the start of its block, the window starting at
    padded ``j`` is ``max(h[j], g[j + 2 * radius])``: two running maxima and one comparison per
    pixel, whatever the radius. Both are segmented scans over tiles of ``BLOCK_T = 2**LOG_T``
    positions by ``BLOCK_L`` lines, with a carry between tiles.

    One program owns ``BLOCK_L`` lines and the outputs ``[j0, j0 + seg_len)``. Phase 1 walks down
    from the end of the last block, scanning ``h``, and parks it in ``dst``; phase 2 walks up
    scanning ``g`` and writes ``max(h, g)`` over it. Each phase reads ``seg_len + 2 * radius``
    positions (the launcher keeps ``seg_len`` a few radii long; the second read hits the cache);
    ``dst`` is written twice and read once by the same program. Bytes from DRAM: about one read of
    ``src`` and one write of ``dst``.

    ``ROTATED``: the lines are the rows of the rotated grid ``dst (2B, half, half)`` of the
    ``img_h x img_w`` images ``src`` (program ``b`` is parity class ``b % 2`` of image ``b // 2``),
    read straight from the image: the first pass of a diamond needs no rotated copy.
    """
    b = tl.program_id(0).to(tl.int64)
    line = tl.program_id(1) * BLOCK_L + tl.arange(0, BLOCK_L)[None, :]
    lines_ok = line < lines
    if ROTATED:
        parity = (b % 2).to(tl.int32)
        src_ptr += (b // 2) * stride_sb
    else:
        parity = 0
        src_ptr += b * stride_sb
    dst_ptr += b * stride_db + line * stride_dl
    t = tl.arange(0, BLOCK_T)[:, None]
    win = 2 * radius + 1
    j0 = tl.program_id(2) * seg_len
    j1 = tl.minimum(j0 + seg_len, n)

    # Phase 1: h[q] for q in [j0, j1), from the end of the block that holds j1 - 1 (not past the
    # last real position: beyond it everything is -inf) down to j0.
    top = tl.minimum((j1 - 1) // win * win + win - 1, radius + n - 1)
    carry = tl.full([BLOCK_L], float("-inf"), COMPUTE)
    for i in range(0, tl.cdiv(top - j0 + 1, BLOCK_T)):
        q = top - i * BLOCK_T - t
        ptrs, ok = _line_source(
            src_ptr, stride_sl, stride_sp, line, lines_ok, q - radius, n, parity, img_h, img_w, ROTATED
        )
        run, carry = _scan_tile(ptrs, ok, q, win - 1 - q % win, carry, NEGATE, COMPUTE, LOG_T)
        tl.store(dst_ptr + q * stride_dp, run.to(dst_ptr.dtype.element_ty), mask=lines_ok & (q >= j0) & (q < j1))

    # Other threads of this program read what phase 1 stored.
    tl.debug_barrier()

    # Phase 2: g[q] for q in [j0 + 2r, j1 + 2r), from the start of the block that holds j0 + 2r
    # (not before the first real position), and out[q - 2r] = max(h[q - 2r], g[q]).
    bottom = tl.maximum((j0 + 2 * radius) // win * win, radius)
    carry = tl.full([BLOCK_L], float("-inf"), COMPUTE)
    for i in range(0, tl.cdiv(j1 + 2 * radius - bottom, BLOCK_T)):
        q = bottom + i * BLOCK_T + t
        ptrs, ok = _line_source(
            src_ptr, stride_sl, stride_sp, line, lines_ok, q - radius, n, parity, img_h, img_w, ROTATED
        )
        run, carry = _scan_tile(ptrs, ok, q, q % win, carry, NEGATE, COMPUTE, LOG_T)
        j = q - 2 * radius
        ok = lines_ok & (j >= j0) & (j < j1)
        parked = tl.load(dst_ptr + j * stride_dp, mask=ok, other=0.0).to(COMPUTE)
        out = tl.maximum(parked, run, propagate_nan=tl.PropagateNan.ALL)
        if NEGATE:
            out = -out
        tl.store(dst_ptr + j * stride_dp, out.to(dst_ptr.dtype.element_ty), mask=ok)


@triton.jit
def _max_tap(
    acc, s_ptr, rows, cols, di: tl.constexpr, dj: tl.constexpr, w, half, ok, NEGATE: tl.constexpr, COMPUTE: tl.constexpr
):
    """``max(acc, rotated grid at pixel (rows + di, cols + dj))`` (negated when ``NEGATE``), NaN propagating."""
    u = rows + di + cols + dj + 2
    v = rows + di - cols - dj + w + 1
    tap = tl.load(s_ptr + (u % 2) * half * half + (u // 2) * half + v // 2, mask=ok, other=0.0).to(COMPUTE)
    if NEGATE:
        tap = -tap
    return tl.maximum(acc, tap, propagate_nan=tl.PropagateNan.ALL)


@triton.jit
def _diamond_taps_kernel(
    s_ptr,
    dst_ptr,
    stride_db,
    stride_dh,
    stride_dw,
    h,
    w,
    half,
    EVEN: tl.constexpr,
    NEGATE: tl.constexpr,
    COMPUTE: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_W: tl.constexpr,
):
    """``dst[i, j]`` = the maximum of the rotated grid ``s`` over a small diamond around ``(i, j)``.

    Rotated grid ``(B, 2, half, half)``: pixel ``(i, j)`` is cell ``(u % 2, u // 2, v // 2)``
    with ``u = i + j + 2``, ``v = i - j + w + 1`` (a margin of 2 for the taps); ``u - v`` has the
    parity of ``w + 1``, so each parity class of ``u`` is a dense grid, and a step ``(1, 1)`` or
    ``(1, -1)`` of the image is one step along its rows or columns. ``s`` holds ``S_m``, the
    maximum over ``(i, j) + a(1, 1) + b(1, -1)``, ``|a|, |b| <= m``.
    The diamond of radius ``2m + 1`` is ``S_m`` over the 5-point cross (``EVEN`` false); that of
    radius ``2m + 2`` is ``S_m`` over the 13-point diamond of radius 2. Taps outside the image
    read the margin of ``s``, which is exact there. Reads 5 or 13 cached cells per pixel (the
    rotated grid of this mask stays in L2 for a tile), writes one pixel.
    """
    b = tl.program_id(0).to(tl.int64)
    rows = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)[:, None]
    cols = tl.program_id(2) * BLOCK_W + tl.arange(0, BLOCK_W)[None, :]
    ok = (rows < h) & (cols < w)
    s_ptr += b * 2 * half * half
    acc = tl.full([BLOCK_H, BLOCK_W], float("-inf"), COMPUTE)
    acc = _max_tap(acc, s_ptr, rows, cols, 0, 0, w, half, ok, NEGATE, COMPUTE)
    acc = _max_tap(acc, s_ptr, rows, cols, -1, 0, w, half, ok, NEGATE, COMPUTE)
    acc = _max_tap(acc, s_ptr, rows, cols, 1, 0, w, half, ok, NEGATE, COMPUTE)
    acc = _max_tap(acc, s_ptr, rows, cols, 0, -1, w, half, ok, NEGATE, COMPUTE)
    acc = _max_tap(acc, s_ptr, rows, cols, 0, 1, w, half, ok, NEGATE, COMPUTE)
    if EVEN:
        acc = _max_tap(acc, s_ptr, rows, cols, -2, 0, w, half, ok, NEGATE, COMPUTE)
        acc = _max_tap(acc, s_ptr, rows, cols, 2, 0, w, half, ok, NEGATE, COMPUTE)
        acc = _max_tap(acc, s_ptr, rows, cols, 0, -2, w, half, ok, NEGATE, COMPUTE)
        acc = _max_tap(acc, s_ptr, rows, cols, 0, 2, w, half, ok, NEGATE, COMPUTE)
        acc = _max_tap(acc, s_ptr, rows, cols, -1, -1, w, half, ok, NEGATE, COMPUTE)
        acc = _max_tap(acc, s_ptr, rows, cols, -1, 1, w, half, ok, NEGATE, COMPUTE)
        acc = _max_tap(acc, s_ptr, rows, cols, 1, -1, w, half, ok, NEGATE, COMPUTE)
        acc = _max_tap(acc, s_ptr, rows, cols, 1, 1, w, half, ok, NEGATE, COMPUTE)
    if NEGATE:
        acc = -acc
    tl.store(dst_ptr + b * stride_db + rows * stride_dh + cols * stride_dw, acc.to(dst_ptr.dtype.element_ty), mask=ok)
