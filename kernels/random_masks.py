"""Random inpainting masks of ``inpaint_fused.precompute.masks``: the parameter draw and the rasterizer.

The draw's field numbers, constants and order of operations are those of ``draw_params_torch``
(the reference, bit for bit; tests compare the two).
"""

import triton
import triton.language as tl


@triton.jit
def _random_masks_kernel(
    segments_ptr,
    boxes_ptr,
    keep_ptr,
    out_ptr,
    n_segments,
    n_boxes,
    size,
    BLOCK_Y: tl.constexpr,
    BLOCK_X: tl.constexpr,
):
    """One ``BLOCK_Y x BLOCK_X`` tile of one mask: the union of capsules, boxes and the outside of ``keep``.

    Inputs (contiguous int64): ``segments (N, S, 5)`` = ``ax, ay, bx, by, r`` in half pixels (pixel
    ``i``'s centre at ``2i + 1``), ``boxes (N, K, 4)`` = ``x0, y0, x1, y1`` with ``[x0, x1)``,
    ``keep (N, 4)`` the kept rectangle. Output: ``(N, size, size)`` float32 0/1.

    A pixel centre P is within radius r of segment AB when, with V = P - A, D = B - A:
    ``V.D <= 0`` and ``|V|^2 <= r^2``; or ``V.D >= |D|^2`` and ``|P - B|^2 <= r^2``; or else
    ``(V x D)^2 <= r^2 |D|^2``: exact integers. For sizes up to 8192 (drawn vertices inside the
    image, r <= 2 * 8192) the dot products and ``|V|^2`` stay below 2^31 (int32); the squared cross
    product and ``r^2 |D|^2`` need int64. A shape whose bounding box, grown by its radius, misses the
    tile is skipped with one scalar test (a superset test: skipping never changes a pixel), so a
    tile pays only for the strokes that reach it.

    Bytes: 4 per pixel written, plus ``40 S + 32 K + 32`` read per tile (cached: every tile of a mask
    reads the same shapes). Tiles of one mask, so the grid is (tiles x, tiles y, N).
    """
    pid_n = tl.program_id(2).to(tl.int64)
    first_x = tl.program_id(0) * BLOCK_X
    first_y = tl.program_id(1) * BLOCK_Y
    cols = first_x + tl.arange(0, BLOCK_X)[None, :]
    rows = first_y + tl.arange(0, BLOCK_Y)[:, None]
    last_x = first_x + BLOCK_X - 1
    last_y = first_y + BLOCK_Y - 1

    keep = keep_ptr + pid_n * 4
    keep_x0 = tl.load(keep).to(tl.int32)
    keep_y0 = tl.load(keep + 1).to(tl.int32)
    keep_x1 = tl.load(keep + 2).to(tl.int32)
    keep_y1 = tl.load(keep + 3).to(tl.int32)
    hit = (cols < keep_x0) | (cols >= keep_x1) | (rows < keep_y0) | (rows >= keep_y1)

    for k in range(n_boxes):
        box = boxes_ptr + (pid_n * n_boxes + k) * 4
        x0 = tl.load(box).to(tl.int32)
        y0 = tl.load(box + 1).to(tl.int32)
        x1 = tl.load(box + 2).to(tl.int32)
        y1 = tl.load(box + 3).to(tl.int32)
        if (x0 <= last_x) & (x1 > first_x) & (y0 <= last_y) & (y1 > first_y):
            hit = hit | ((cols >= x0) & (cols < x1) & (rows >= y0) & (rows < y1))

    px = 2 * cols + 1
    py = 2 * rows + 1
    for s in range(n_segments):
        segment = segments_ptr + (pid_n * n_segments + s) * 5
        ax = tl.load(segment).to(tl.int32)
        ay = tl.load(segment + 1).to(tl.int32)
        bx = tl.load(segment + 2).to(tl.int32)
        by = tl.load(segment + 3).to(tl.int32)
        r = tl.load(segment + 4).to(tl.int32)
        reaches_x = (tl.minimum(ax, bx) - r <= 2 * last_x + 1) & (tl.maximum(ax, bx) + r >= 2 * first_x + 1)
        reaches_y = (tl.minimum(ay, by) - r <= 2 * last_y + 1) & (tl.maximum(ay, by) + r >= 2 * first_y + 1)
        if reaches_x & reaches_y:
            dx = bx - ax
            dy = by - ay
            vx = px - ax
            vy = py - ay
            wx = px - bx
            wy = py - by
            r2 = r * r
            dot = vx * dx + vy * dy
            length2 = dx * dx + dy * dy
            near_a = vx * vx + vy * vy <= r2
            near_b = wx * wx + wy * wy <= r2
            cross = (vx * dy - vy * dx).to(tl.int64)
            near_line = cross * cross <= r2.to(tl.int64) * length2.to(tl.int64)
            hit = hit | tl.where(dot <= 0, near_a, tl.where(dot >= length2, near_b, near_line))

    inside = (rows < size) & (cols < size)
    tl.store(out_ptr + pid_n * size * size + rows * size + cols, hit.to(tl.float32), mask=inside)


@triton.jit
def _hash32(x):
    """xorshift-multiply mixer on int64 holding a 32-bit word; constants below 2^31 keep products below 2^63."""
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x = x ^ (x >> 15)
    x = (x * 0x31848BAB) & 0xFFFFFFFF
    return x ^ (x >> 16)


@triton.jit
def _word(k0, k1, field, slot, FIELD_SHIFT: tl.constexpr):
    """Draw ``(field, slot)`` of the samples with key words k0, k1: a 32-bit word in int64."""
    return _hash32(_hash32(k0 ^ ((field << FIELD_SHIFT) | slot)) ^ k1)


@triton.jit
def _uniform(k0, k1, field, slot, lo, hi, FIELD_SHIFT: tl.constexpr):
    """Draw ``(field, slot)`` as an integer uniform in ``[lo, hi]``: ``lo + (word * (hi - lo + 1)) >> 32``."""
    return lo + ((_word(k0, k1, field, slot, FIELD_SHIFT) * (hi - lo + 1)) >> 32)


@triton.jit
def _mask_params_kernel(
    keys_ptr,
    table_ptr,
    segments_ptr,
    boxes_ptr,
    keep_ptr,
    kinds_ptr,
    n,
    size,
    first,
    second,
    count_lo,
    count_hi,
    width_lo,
    width_hi,
    vertices_lo,
    vertices_hi,
    length_lo,
    length_hi,
    turn,
    box_count_lo,
    box_count_hi,
    side_lo,
    side_hi,
    depth_lo,
    depth_hi,
    STROKES: tl.constexpr,
    SEGMENTS: tl.constexpr,
    BOXES: tl.constexpr,
    TURNS: tl.constexpr,
    FIXED: tl.constexpr,
    FIELD_SHIFT: tl.constexpr,
    MAX_SLOTS: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    """Every shape of ``BLOCK_N`` samples: kind, stroke segments, boxes, kept rectangle (int64 outputs).

    Vectorized over samples; each draw is a stateless hash of (key, field, slot), so the loops
    over strokes, segments and boxes carry only the stroke's current vertex and direction. Reads
    16 bytes of key per sample (and the 32 KiB cosine table, cached); writes
    ``8 * (5 * STROKES * SEGMENTS + 4 * BOXES + 5)`` bytes per sample. One launch for a batch
    replaces the hundred-odd small torch ops of the reference, which on a GPU cost launches, not work.
    """
    rows = tl.program_id(0).to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    ok = rows < n
    k0 = tl.load(keys_ptr + rows * 2, mask=ok, other=0)
    k1 = tl.load(keys_ptr + rows * 2 + 1, mask=ok, other=0)
    kind_word = _word(k0, k1, 0, 0, FIELD_SHIFT)
    kinds = (kind_word >= first).to(tl.int64) + (kind_word >= second).to(tl.int64)
    tl.store(kinds_ptr + rows, kinds, mask=ok)

    far = -8 * size
    count = _uniform(k0, k1, 1, 0, count_lo, count_hi, FIELD_SHIFT)
    for s in range(STROKES):
        width = _uniform(k0, k1, 2, s, width_lo, width_hi, FIELD_SHIFT)
        x = _uniform(k0, k1, 3, s, 0, size - 1, FIELD_SHIFT)
        y = _uniform(k0, k1, 4, s, 0, size - 1, FIELD_SHIFT)
        angle = _uniform(k0, k1, 5, s, 0, TURNS - 1, FIELD_SHIFT)
        used = _uniform(k0, k1, 6, s, vertices_lo, vertices_hi, FIELD_SHIFT) - 1
        for v in range(SEGMENTS):
            slot = s * MAX_SLOTS + v
            length = _uniform(k0, k1, 7, slot, length_lo, length_hi, FIELD_SHIFT)
            angle = angle + _uniform(k0, k1, 8, slot, -turn, turn, FIELD_SHIFT)
            cos = tl.load(table_ptr + (angle & (TURNS - 1)))
            sin = tl.load(table_ptr + ((angle - TURNS // 4) & (TURNS - 1)))
            nx = tl.minimum(tl.maximum(x + ((length * cos + (1 << (FIXED - 1))) >> FIXED), 0), size - 1)
            ny = tl.minimum(tl.maximum(y + ((length * sin + (1 << (FIXED - 1))) >> FIXED), 0), size - 1)
            drawn = (kinds == 0) & (s < count) & (v < used)
            out = segments_ptr + (rows * (STROKES * SEGMENTS) + s * SEGMENTS + v) * 5
            tl.store(out, tl.where(drawn, 2 * x + 1, far), mask=ok)
            tl.store(out + 1, tl.where(drawn, 2 * y + 1, far), mask=ok)
            tl.store(out + 2, tl.where(drawn, 2 * nx + 1, far), mask=ok)
            tl.store(out + 3, tl.where(drawn, 2 * ny + 1, far), mask=ok)
            tl.store(out + 4, tl.where(drawn, width, 1), mask=ok)
            x = nx
            y = ny

    box_count = _uniform(k0, k1, 9, 0, box_count_lo, box_count_hi, FIELD_SHIFT)
    for b in range(BOXES):
        w = _uniform(k0, k1, 10, b, side_lo, side_hi, FIELD_SHIFT)
        h = _uniform(k0, k1, 11, b, side_lo, side_hi, FIELD_SHIFT)
        x0 = _uniform(k0, k1, 12, b, 0, size - w, FIELD_SHIFT)
        y0 = _uniform(k0, k1, 13, b, 0, size - h, FIELD_SHIFT)
        drawn = ((kinds == 1) & (b < box_count)).to(tl.int64)
        out = boxes_ptr + (rows * BOXES + b) * 4
        tl.store(out, x0 * drawn, mask=ok)
        tl.store(out + 1, y0 * drawn, mask=ok)
        tl.store(out + 2, (x0 + w) * drawn, mask=ok)
        tl.store(out + 3, (y0 + h) * drawn, mask=ok)

    sides = _word(k0, k1, 14, 0, FIELD_SHIFT)
    fallback = _uniform(k0, k1, 15, 0, 0, 3, FIELD_SHIFT)
    none = (sides & 15) == 0
    outpaint = (kinds == 2).to(tl.int64)
    for i in tl.static_range(4):
        masked = ((sides >> i) & 1) | (none & (fallback == i)).to(tl.int64)
        depth = _uniform(k0, k1, 16, i, depth_lo, depth_hi, FIELD_SHIFT) * masked * outpaint
        tl.store(keep_ptr + rows * 4 + i, tl.where(i < 2, depth, size - depth), mask=ok)
