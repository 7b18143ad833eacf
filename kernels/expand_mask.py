"""Grey dilation of a mask by a square or a diamond, O(1) per pixel whatever the radius.

Three kernels. ``_running_max_kernel``: a running maximum along one axis (van Herk/Gil-Werman),
run along rows then columns for a square. ``_rotate_kernel`` and ``_diamond_taps_kernel``: the
diamond ``|dx| + |dy| <= e`` is a square in the rotated coordinates ``u = i + j``,
``v = i - j`` on one parity lattice, so it reduces to the same running maxima (see
``inpaint_fused.ops.expand_mask``). Erosion is the dilation of the negated mask (``NEGATE``):
negation is exact, values are only selected, so every result is one of the input values.
NaN propagates: a window holding a NaN gives NaN. ``COMPUTE`` is float64 for float64 masks and
float32 otherwise (float16/bfloat16 convert both ways exactly); buffers keep the mask's dtype.
"""

import triton
import triton.language as tl


@triton.jit
def _scan_tile(
    src_ptr, stride_sp, lines_ok, q, dist, carry, radius, n,
    NEGATE: tl.constexpr, COMPUTE: tl.constexpr, LOG_T: tl.constexpr,
):
    """Running maximum over the ``[BLOCK_T, BLOCK_L]`` tile of padded positions ``q`` in scan order.

    Position ``q`` is element ``q - radius`` of a line, ``-inf`` outside ``[radius, radius + n)``.
    ``dist`` is how many positions of its block precede ``q`` in scan order; ``carry`` (per line)
    the running maximum the previous tile left. Inside the tile, a segmented Hillis-Steele scan:
    ``LOG_T`` steps of ``max`` with the element ``2**k`` back (``tl.gather`` along the scan axis)
    while it is in the same block. Returns the tile and the new carry.
    """
    j = q - radius
    ok = lines_ok & (j >= 0) & (j < n)
    v = tl.load(src_ptr + j * stride_sp, mask=ok, other=0.0).to(COMPUTE)
    if NEGATE:
        v = -v
    run = tl.where(ok, v, float("-inf"))
    t = tl.arange(0, q.shape[0])[:, None]
    depth = tl.minimum(dist, t)
    for k in tl.static_range(LOG_T):
        back = tl.gather(run, tl.broadcast_to(tl.maximum(t - (1 << k), 0), run.shape), 0)
        run = tl.where(depth >= (1 << k), tl.maximum(run, back, propagate_nan=tl.PropagateNan.ALL), run)
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
    NEGATE: tl.constexpr,
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
    """
    b = tl.program_id(0).to(tl.int64)
    line = tl.program_id(1) * BLOCK_L + tl.arange(0, BLOCK_L)[None, :]
    lines_ok = line < lines
    src_ptr += b * stride_sb + line * stride_sl
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
        dist = win - 1 - q % win
        run, carry = _scan_tile(src_ptr, stride_sp, lines_ok, q, dist, carry, radius, n, NEGATE, COMPUTE, LOG_T)
        tl.store(dst_ptr + q * stride_dp, run.to(dst_ptr.dtype.element_ty), mask=lines_ok & (q >= j0) & (q < j1))

    # Other threads of this program read what phase 1 stored.
    tl.debug_barrier()

    # Phase 2: g[q] for q in [j0 + 2r, j1 + 2r), from the start of the block that holds j0 + 2r
    # (not before the first real position), and out[q - 2r] = max(h[q - 2r], g[q]).
    bottom = tl.maximum((j0 + 2 * radius) // win * win, radius)
    carry = tl.full([BLOCK_L], float("-inf"), COMPUTE)
    for i in range(0, tl.cdiv(j1 + 2 * radius - bottom, BLOCK_T)):
        q = bottom + i * BLOCK_T + t
        run, carry = _scan_tile(src_ptr, stride_sp, lines_ok, q, q % win, carry, radius, n, NEGATE, COMPUTE, LOG_T)
        j = q - 2 * radius
        ok = lines_ok & (j >= j0) & (j < j1)
        parked = tl.load(dst_ptr + j * stride_dp, mask=ok, other=0.0).to(COMPUTE)
        out = tl.maximum(parked, run, propagate_nan=tl.PropagateNan.ALL)
        if NEGATE:
            out = -out
        tl.store(dst_ptr + j * stride_dp, out.to(dst_ptr.dtype.element_ty), mask=ok)


@triton.jit
def _rotate_kernel(
    src_ptr,
    dst_ptr,
    stride_sb,
    stride_sh,
    stride_sw,
    h,
    w,
    half,
    NEGATE: tl.constexpr,
    COMPUTE: tl.constexpr,
    BLOCK_U: tl.constexpr,
    BLOCK_V: tl.constexpr,
):
    """The mask in rotated coordinates: ``dst (B, 2, half, half)``, ``-inf`` where no pixel lands.

    Pixel ``(i, j)`` goes to ``u = i + j + 2``, ``v = i - j + w + 1`` (a margin of 2 for the
    taps), cell ``dst[b, u % 2, u // 2, v // 2]``: ``u - v`` has the parity of ``w + 1``, so each
    parity class of ``u`` is a dense grid, and a step ``(1, 1)`` or ``(1, -1)`` of the image is
    one step along its rows or columns. Negated when ``NEGATE``. Reads each pixel once, writes
    about ``(h + w)**2 / 2`` cells, each tile a gather along an anti-diagonal band of the image.
    """
    pid = tl.program_id(0).to(tl.int64)
    b = pid // 2
    parity = (pid % 2).to(tl.int32)
    ru = tl.program_id(1) * BLOCK_U + tl.arange(0, BLOCK_U)[:, None]
    rv = tl.program_id(2) * BLOCK_V + tl.arange(0, BLOCK_V)[None, :]
    u = 2 * ru + parity
    v = 2 * rv + (parity + w + 1) % 2
    i = (u + v - w - 3) // 2
    j = (u - v + w - 1) // 2
    ok = (i >= 0) & (i < h) & (j >= 0) & (j < w)
    value = tl.load(src_ptr + b * stride_sb + i * stride_sh + j * stride_sw, mask=ok, other=0.0).to(COMPUTE)
    if NEGATE:
        value = -value
    value = tl.where(ok, value, float("-inf"))
    cells = (ru < half) & (rv < half)
    tl.store(dst_ptr + pid * half * half + ru * half + rv, value.to(dst_ptr.dtype.element_ty), mask=cells)


@triton.jit
def _max_tap(acc, s_ptr, rows, cols, di: tl.constexpr, dj: tl.constexpr, w, half, ok, COMPUTE: tl.constexpr):
    """``max(acc, rotated grid at pixel (rows + di, cols + dj))``, NaN propagating."""
    u = rows + di + cols + dj + 2
    v = rows + di - cols - dj + w + 1
    tap = tl.load(s_ptr + (u % 2) * half * half + (u // 2) * half + v // 2, mask=ok, other=0.0).to(COMPUTE)
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
    """``dst[i, j]`` = the maximum of the squared rotated grid ``s`` over a small diamond around ``(i, j)``.

    ``s`` holds ``S_m``, the maximum over ``(i, j) + a(1, 1) + b(1, -1)``, ``|a|, |b| <= m``.
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
    acc = _max_tap(acc, s_ptr, rows, cols, 0, 0, w, half, ok, COMPUTE)
    acc = _max_tap(acc, s_ptr, rows, cols, -1, 0, w, half, ok, COMPUTE)
    acc = _max_tap(acc, s_ptr, rows, cols, 1, 0, w, half, ok, COMPUTE)
    acc = _max_tap(acc, s_ptr, rows, cols, 0, -1, w, half, ok, COMPUTE)
    acc = _max_tap(acc, s_ptr, rows, cols, 0, 1, w, half, ok, COMPUTE)
    if EVEN:
        acc = _max_tap(acc, s_ptr, rows, cols, -2, 0, w, half, ok, COMPUTE)
        acc = _max_tap(acc, s_ptr, rows, cols, 2, 0, w, half, ok, COMPUTE)
        acc = _max_tap(acc, s_ptr, rows, cols, 0, -2, w, half, ok, COMPUTE)
        acc = _max_tap(acc, s_ptr, rows, cols, 0, 2, w, half, ok, COMPUTE)
        acc = _max_tap(acc, s_ptr, rows, cols, -1, -1, w, half, ok, COMPUTE)
        acc = _max_tap(acc, s_ptr, rows, cols, -1, 1, w, half, ok, COMPUTE)
        acc = _max_tap(acc, s_ptr, rows, cols, 1, -1, w, half, ok, COMPUTE)
        acc = _max_tap(acc, s_ptr, rows, cols, 1, 1, w, half, ok, COMPUTE)
    if NEGATE:
        acc = -acc
    tl.store(dst_ptr + b * stride_db + rows * stride_dh + cols * stride_dw, acc.to(dst_ptr.dtype.element_ty), mask=ok)
