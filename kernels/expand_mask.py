"""Grey dilation of a mask by a square or a diamond, O(1) per pixel whatever the radius.

Two kernels. ``_running_max_kernel``: a running maximum along one axis (van Herk/Gil-Werman),
run along rows then columns for a square. The diamond ``|dx| + |dy| <= e`` is a square in the
rotated coordinates ``u = i + j``, ``v = i - j`` on one parity lattice, so it reduces to the
same running maxima (the first one reading the image through the rotation), then
``_diamond_taps_kernel`` (see ``inpaint_fused.ops.expand_mask``). The rotated grid has about
twice as many cells as the image has pixels; its two passes (``BAND``) write and read only the
band that can reach the output, each line's cells in closed form (``_band_cells``): the cells the
taps read, and for the row pass those plus the column windows' reach. Erosion is the dilation of
the negated mask (``NEGATE``): negation is exact, values are only selected, so every result is
one of the input values.
NaN propagates: a window holding a NaN gives NaN. ``COMPUTE`` is float64 for float64 masks and
float32 otherwise (float16/bfloat16 convert both ways exactly); buffers keep the mask's dtype.
"""

import triton
import triton.language as tl

from .common import _INTERPRETED


@triton.jit
def _band_cells(line, lines_ok, x_off, y_off, n, img_h, img_w, a_x, a_y, b):
    """Per line of the rotated grid, the cells ``[lo, hi)`` that lie in ``D(a_x, a_y, b)``; ``(n, 0)`` if none.

    The line's fixed coordinate is ``x = 2 * line + x_off`` (``u`` for a row of the grid, ``v`` for
    a column), its cell ``c`` has the other one ``y = 2 * c + y_off``. ``D(a_x, a_y, b)`` is the
    ``img_h x img_w`` image's rotated rectangle ``u + v in [w + 3, 2h + w + 1]``, ``u - v in
    [1 - w, w - 1]`` widened by ``b`` on those four sides and cut to ``x in [2 - a_x, h + w + a_x]``,
    ``y in [2 - a_y, h + w + a_y]`` (symmetric in ``u``, ``v``: fixing either gives the same form).
    ``D(0, 0, 0)`` is the pixels; ``D(e, e, 2e)`` the points within L1 distance ``e`` of the image;
    ``D(a_x + 2k, a_y, b + 2k)`` is ``D(a_x, a_y, b)`` and ``2k`` further along ``x`` (a window of
    ``k`` cells along the other axis of the grid). Divisions on non-negative values only (C and
    Python round them alike).
    """
    x = 2 * line + x_off
    lo = tl.maximum(tl.maximum(2 - a_y, img_w + 3 - b - x), x + 1 - img_w - b)
    hi = tl.minimum(tl.minimum(img_h + img_w + a_y, 2 * img_h + img_w + 1 + b - x), x + img_w - 1 + b)
    c_lo = (tl.maximum(lo, y_off) - y_off + 1) // 2
    c_hi = tl.minimum((tl.maximum(hi - y_off, -2) + 2) // 2, n)
    ok = lines_ok & (x >= 2 - a_x) & (x <= img_h + img_w + a_x) & (c_lo < c_hi)
    return tl.where(ok, c_lo, n), tl.where(ok, c_hi, 0)


@triton.jit
def _line_source(src_ptr, stride_sl, stride_sp, line, lines_ok, j, lo, hi, parity, img_w, ROTATED: tl.constexpr):
    """Pointers to element ``j`` of each line, and where it is read (``j`` in the line's ``[lo, hi)``).

    Plain: ``src[line, j]``. ``ROTATED``: cell ``(line, j)`` of parity class ``parity`` of the
    rotated grid (see ``_diamond_taps_kernel``), i.e. pixel ``(i, jj)`` of the image (strides
    ``stride_sl``, ``stride_sp``) with ``u = 2 * line + parity = i + jj + 2`` and ``v = 2 * j +
    (parity + img_w + 1) % 2 = i - jj + img_w + 1``; ``[lo, hi)`` is then where a pixel lands.
    """
    ok = lines_ok & (j >= lo) & (j < hi)
    if ROTATED:
        u = 2 * line + parity
        v = 2 * j + (parity + img_w + 1) % 2
        # u + v - img_w - 3 and u - v + img_w - 1 are even: exact halves.
        i = (u + v - img_w - 3) // 2
        jj = (u - v + img_w - 1) // 2
        return src_ptr + i * stride_sl + jj * stride_sp, ok
    else:
        return src_ptr + line * stride_sl + j * stride_sp, ok


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
    out_ax,
    out_ay,
    out_b,
    src_ax,
    src_ay,
    src_b,
    NEGATE: tl.constexpr,
    BAND: tl.constexpr,
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

    ``BAND``: the lines are rows (``ROTATED``) or columns of the rotated grid ``(2B, half, half)``
    of ``img_h x img_w`` images (``b % 2`` the parity class); each line is written only on its
    cells in ``D(out_ax, out_ay, out_b)`` and reads ``src`` only on its cells in ``D(src_ax,
    src_ay, src_b)`` (``_band_cells``), taking ``-inf`` elsewhere, which the caller guarantees is
    the value there. Without ``BAND`` both are the whole line ``[0, n)``.

    The program's band is ``[o0, o1)``, the union of its ``BLOCK_L`` lines' output cells; it owns
    the outputs ``[o0 + k * seg_len, ...)`` (``k`` its third program id; the last one takes the
    rest) and exits at once when there are none. Phase 1 walks down from the end of the block
    that holds its last output (not past the last source cell of its lines: beyond it everything
    is ``-inf``), scanning ``h``, and parks it in ``dst``; phase 2 walks up from the start of the
    block that holds its first window end (not before the first source cell) scanning ``g`` and
    writes ``max(h, g)`` over it. Each phase reads ``seg_len + 2 * radius`` positions (the
    launcher keeps ``seg_len`` a few radii long; the second read hits the cache); ``dst`` is
    written twice and read once by the same program. Bytes from DRAM: about one read of ``src``
    and one write of ``dst`` over the band.

    ``ROTATED``: ``src`` is the images themselves (program ``b`` reads image ``b // 2``) and the
    source cells are those where a pixel lands: the first pass of a diamond needs no rotated copy.
    """
    tl.static_assert(BAND or not ROTATED, "the rotated pass reads the pixels through its band")
    b = tl.program_id(0).to(tl.int64)
    line = tl.program_id(1) * BLOCK_L + tl.arange(0, BLOCK_L)[None, :]
    lines_ok = line < lines
    parity = (b % 2).to(tl.int32)
    if ROTATED:
        src_ptr += (b // 2) * stride_sb
    else:
        src_ptr += b * stride_sb
    dst_ptr += b * stride_db + line * stride_dl
    if BAND:
        # A row of the grid fixes u = 2 * line + parity, a column fixes v (of parity (parity + w + 1) % 2).
        if ROTATED:
            x_off = parity
            y_off = (parity + img_w + 1) % 2
        else:
            x_off = (parity + img_w + 1) % 2
            y_off = parity
        out_lo, out_hi = _band_cells(line, lines_ok, x_off, y_off, n, img_h, img_w, out_ax, out_ay, out_b)
        src_lo, src_hi = _band_cells(line, lines_ok, x_off, y_off, n, img_h, img_w, src_ax, src_ay, src_b)
        o0 = tl.min(out_lo)
        o1 = tl.max(out_hi)
        s0 = tl.min(src_lo)
        s1 = tl.max(src_hi)
    else:
        out_lo = 0
        out_hi = n
        src_lo = 0
        src_hi = n
        o0 = 0
        o1 = n
        s0 = 0
        s1 = n
    k = tl.program_id(2)
    j0 = o0 + k * seg_len
    j1 = tl.where(k == tl.num_programs(2) - 1, o1, tl.minimum(j0 + seg_len, o1))
    if j0 >= j1:
        return
    t = tl.arange(0, BLOCK_T)[:, None]
    win = 2 * radius + 1

    # Phase 1: h[q] for q in [j0, j1), from the end of the block that holds j1 - 1 (not past the
    # last source cell, beyond which everything is -inf, but at least from j1 - 1) down to j0.
    top = tl.maximum(tl.minimum((j1 - 1) // win * win + win - 1, radius + s1 - 1), j1 - 1)
    carry = tl.full([BLOCK_L], float("-inf"), COMPUTE)
    for i in range(0, tl.cdiv(top - j0 + 1, BLOCK_T)):
        q = top - i * BLOCK_T - t
        ptrs, ok = _line_source(
            src_ptr, stride_sl, stride_sp, line, lines_ok, q - radius, src_lo, src_hi, parity, img_w, ROTATED
        )
        run, carry = _scan_tile(ptrs, ok, q, win - 1 - q % win, carry, NEGATE, COMPUTE, LOG_T)
        keep = lines_ok & (q >= j0) & (q < j1) & (q >= out_lo) & (q < out_hi)
        tl.store(dst_ptr + q * stride_dp, run.to(dst_ptr.dtype.element_ty), mask=keep)

    # Other threads of this program read what phase 1 stored.
    tl.debug_barrier()

    # Phase 2: g[q] for q in [j0 + 2r, j1 + 2r), from the start of the block that holds j0 + 2r
    # (not before the first source cell, but at most from j0 + 2r), and out[q - 2r] = max(h[q - 2r], g[q]).
    bottom = tl.minimum(tl.maximum((j0 + 2 * radius) // win * win, radius + s0), j0 + 2 * radius)
    carry = tl.full([BLOCK_L], float("-inf"), COMPUTE)
    for i in range(0, tl.cdiv(j1 + 2 * radius - bottom, BLOCK_T)):
        q = bottom + i * BLOCK_T + t
        ptrs, ok = _line_source(
            src_ptr, stride_sl, stride_sp, line, lines_ok, q - radius, src_lo, src_hi, parity, img_w, ROTATED
        )
        run, carry = _scan_tile(ptrs, ok, q, q % win, carry, NEGATE, COMPUTE, LOG_T)
        j = q - 2 * radius
        keep = lines_ok & (j >= j0) & (j < j1) & (j >= out_lo) & (j < out_hi)
        parked = tl.load(dst_ptr + j * stride_dp, mask=keep, other=0.0).to(COMPUTE)
        out = tl.maximum(parked, run, propagate_nan=tl.PropagateNan.ALL)
        if NEGATE:
            out = -out
        tl.store(dst_ptr + j * stride_dp, out.to(dst_ptr.dtype.element_ty), mask=keep)


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
    read the margin of ``s``, which is exact there: the grid's last pass wrote every cell within L1
    distance 2 (``EVEN``) or 1 of the image, and only those are read. Reads 5 or 13 cached cells per pixel (the
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
