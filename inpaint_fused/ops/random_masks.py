"""``inpaint_fused::random_masks``: the rasterizer of the precompute mask family (capsules, boxes, borders).

The shapes arrive in exact integer units (see ``inpaint_fused.precompute.masks.MaskParams``), so
"is this pixel centre inside" is decided with integer arithmetic: the Triton kernel (a tile of one
mask per program, skipping the shapes that cannot reach the tile) and the torch path (every pixel
against every shape, int64, in chunks of rows) give the same bits on any device.
"""

from __future__ import annotations

import torch

from .. import _backend
from .launch import cdiv

BLOCK = 32  # tile side: 32 x 32 pixels per program
DRAW_BLOCK = 64  # samples per program of the draw


def rasterize_torch(segments: torch.Tensor, boxes: torch.Tensor, keep: torch.Tensor, size: int) -> torch.Tensor:
    """Union of capsules (segments with round ends), boxes and the outside of ``keep``: ``(N, size, size)`` bool.

    A pixel centre P is within radius r of segment AB when, with V = P - A, D = B - A:
    ``V.D <= 0`` and ``|V|^2 <= r^2``; or ``V.D >= |D|^2`` and ``|P - B|^2 <= r^2``; or else
    ``(V x D)^2 <= r^2 |D|^2``. All terms are integers below 2^62 for sizes up to 8192: exact.
    """
    index = torch.arange(size, device=segments.device, dtype=torch.int64)
    centre = 2 * index + 1
    px, py = centre.view(1, 1, 1, size), centre.view(1, 1, size, 1)
    ax, ay, bx, by, r = (t[..., None, None] for t in segments.unbind(-1))
    dx, dy = bx - ax, by - ay
    vx, vy = px - ax, py - ay
    dot = vx * dx + vy * dy
    length2 = dx * dx + dy * dy
    r2 = r * r
    near_a = vx * vx + vy * vy <= r2
    near_b = (px - bx) * (px - bx) + (py - by) * (py - by) <= r2
    cross = vx * dy - vy * dx
    near_line = cross * cross <= r2 * length2
    strokes = torch.where(dot <= 0, near_a, torch.where(dot >= length2, near_b, near_line)).any(1)
    x0, y0, x1, y1 = (t[..., None, None] for t in boxes.unbind(-1))
    ix, iy = index.view(1, 1, 1, size), index.view(1, 1, size, 1)
    in_boxes = ((ix >= x0) & (ix < x1) & (iy >= y0) & (iy < y1)).any(1)
    kx0, ky0, kx1, ky1 = (t[:, None, None] for t in keep.unbind(-1))
    jx, jy = index.view(1, 1, size), index.view(1, size, 1)
    outside = (jx < kx0) | (jx >= kx1) | (jy < ky0) | (jy >= ky1)
    return strokes | in_boxes | outside


def rasterize(
    segments: torch.Tensor, boxes: torch.Tensor, keep: torch.Tensor, size: int, rows_per_chunk: int = 0
) -> torch.Tensor:
    """The implementation behind the op: ``(N, size, size)`` float32 0/1 on the shapes' device.

    The torch path materializes ``(rows, S, size, size)`` int64 intermediates: ``rows_per_chunk``
    rows at a time (0: about 2^24 elements per chunk).
    """
    n = segments.shape[0]
    out = torch.empty((n, size, size), dtype=torch.float32, device=segments.device)
    if n == 0:
        return out
    if _backend.uses_triton(segments.device):
        segments, boxes, keep = (t.to(torch.int64).contiguous() for t in (segments, boxes, keep))
        grid = (cdiv(size, BLOCK), cdiv(size, BLOCK), n)
        _backend.load_kernels()._random_masks_kernel[grid](
            segments, boxes, keep, out, segments.shape[1], boxes.shape[1], size, BLOCK_Y=BLOCK, BLOCK_X=BLOCK
        )
        return out
    rows = rows_per_chunk or max(1, (1 << 24) // (max(1, segments.shape[1]) * size * size))
    for start in range(0, n, rows):
        stop = start + rows
        out[start:stop] = rasterize_torch(segments[start:stop], boxes[start:stop], keep[start:stop], size)
    return out


def draw_params(keys: torch.Tensor, table: torch.Tensor, spec, fixed: int, field_shift: int, max_slots: int) -> tuple:
    """The Triton draw of ``precompute.masks.draw_params``: ``(segments, boxes, keep, kinds)`` int64.

    ``spec`` is a ``precompute.masks.DrawSpec``; ``table`` the cosine table (``fixed`` fraction bits) on the
    keys' device; ``field_shift``, ``max_slots`` place a draw's counter.
    """
    n, device = keys.shape[0], keys.device
    segments = torch.empty((n, spec.strokes * spec.segments, 5), dtype=torch.int64, device=device)
    boxes = torch.empty((n, spec.boxes, 4), dtype=torch.int64, device=device)
    keep = torch.empty((n, 4), dtype=torch.int64, device=device)
    kinds = torch.empty((n,), dtype=torch.int64, device=device)
    size, first, second, strokes, segment_count, box_count, *ranges = spec
    _backend.load_kernels()._mask_params_kernel[(cdiv(n, DRAW_BLOCK),)](
        keys, table, segments, boxes, keep, kinds, n, size, first, second, *ranges,
        STROKES=strokes, SEGMENTS=segment_count, BOXES=box_count, TURNS=table.shape[0],
        FIXED=fixed, FIELD_SHIFT=field_shift, MAX_SLOTS=max_slots, BLOCK_N=DRAW_BLOCK,
    )  # fmt: skip
    return segments, boxes, keep, kinds


@torch.library.custom_op("inpaint_fused::random_masks", mutates_args=())
def random_masks_op(segments: torch.Tensor, boxes: torch.Tensor, keep: torch.Tensor, size: int) -> torch.Tensor:
    """Masks of ``(N, S, 5)`` segments, ``(N, K, 4)`` boxes, ``(N, 4)`` kept rectangles: ``(N, size, size)`` float32."""
    return rasterize(segments, boxes, keep, size)


@random_masks_op.register_fake
def _(segments, boxes, keep, size):
    return segments.new_empty((segments.shape[0], size, size), dtype=torch.float32)
