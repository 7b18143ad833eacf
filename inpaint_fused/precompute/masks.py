"""Random inpainting masks: parameters drawn per sample id on the host, rasterized in batch on the device.

The family (documented in ``docs/precompute.md``): each sample draws one kind, by weight, then
its shapes, all in pixels of the ``size x size`` crop:

- ``strokes`` (LaMa-style): 1..n polylines; each starts at a uniform point with a uniform
  direction, turns by a uniform angle in ``[-turn, turn]`` at each vertex, each segment of a
  uniform length, the whole stroke of one uniform width, drawn with round caps and joints.
- ``boxes``: 1..n axis-aligned rectangles of uniform side lengths at uniform positions.
- ``outpaint``: borders: each side is masked with probability 1/2 (at least one side) to a
  uniform depth; the rest of the image is kept.

Determinism: the parameters come from ``random.Random(blake2b(seed, id))``, so a sample's mask
depends on its id, the seed, the size and the family only, never on the batch or the rank. Vertices
sit on pixel centres and widths on half pixels, so rasterization is exact integer arithmetic
(int64): the same bits on any device, in any batch, compiled or not.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch

logger = logging.getLogger(__name__)

KINDS = ("strokes", "boxes", "outpaint")


@dataclass(frozen=True)
class MaskFamily:
    """Parameters of the random mask family. Ranges are ``(low, high)``; fractions are of the crop size."""

    weights: tuple[float, float, float] = (0.5, 0.3, 0.2)  # strokes, boxes, outpaint
    stroke_count: tuple[int, int] = (1, 4)
    stroke_vertices: tuple[int, int] = (2, 6)
    stroke_length: tuple[float, float] = (0.05, 0.3)
    stroke_width: tuple[float, float] = (0.02, 0.12)
    stroke_turn: float = 120.0  # degrees
    box_count: tuple[int, int] = (1, 3)
    box_size: tuple[float, float] = (0.1, 0.5)
    outpaint_margin: tuple[float, float] = (0.1, 0.4)
    seed: int = 0

    def __post_init__(self):
        if len(self.weights) != len(KINDS) or min(self.weights) < 0 or sum(self.weights) <= 0:
            raise ValueError(f"mask kind weights must be 3 values >= 0 with a positive sum, got {self.weights}")
        for name in ("stroke_count", "stroke_vertices", "box_count"):
            low, high = getattr(self, name)
            minimum = 2 if name == "stroke_vertices" else 1
            if not (minimum <= low <= high):
                raise ValueError(f"{name} must be a range {minimum} <= low <= high, got {low}:{high}")
        for name, top in (("stroke_length", 2.0), ("stroke_width", 1.0), ("box_size", 1.0), ("outpaint_margin", 0.5)):
            low, high = getattr(self, name)
            if not (0 <= low <= high <= top):
                raise ValueError(f"{name} must be a range 0 <= low <= high <= {top}, got {low}:{high}")
        if not 0 <= self.stroke_turn <= 180:
            raise ValueError(f"stroke_turn must be in [0, 180] degrees, got {self.stroke_turn}")

    @property
    def max_segments(self) -> int:
        return self.stroke_count[1] * (self.stroke_vertices[1] - 1)

    def settings(self) -> dict:
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}


class MaskParams(NamedTuple):
    """Shapes of a batch in exact integer units, padded to fixed counts (unused entries draw nothing).

    ``segments (N, S, 5)``: ``ax, ay, bx, by, r`` in half pixels, pixel ``i``'s centre at ``2i + 1``.
    ``boxes (N, K, 4)``: ``x0, y0, x1, y1`` pixel bounds, ``[x0, x1)``. ``keep (N, 4)``: the kept
    rectangle ``x0, y0, x1, y1`` of an outpaint mask (the whole image otherwise).
    """

    segments: torch.Tensor
    boxes: torch.Tensor
    keep: torch.Tensor


def sample_rng(sample_id: str, seed: int) -> random.Random:
    digest = hashlib.blake2b(f"{seed}\0{sample_id}".encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "little"))


def _strokes(rng: random.Random, family: MaskFamily, size: int) -> list[tuple[int, int, int, int, int]]:
    segments = []
    turn = math.radians(family.stroke_turn)
    for _ in range(rng.randint(*family.stroke_count)):
        width = max(1, round(rng.uniform(*family.stroke_width) * size))  # in half pixels: radius = width / 2 px
        x, y = rng.randrange(size), rng.randrange(size)
        angle = rng.uniform(0.0, 2 * math.pi)
        for _ in range(rng.randint(*family.stroke_vertices) - 1):
            length = rng.uniform(*family.stroke_length) * size
            angle += rng.uniform(-turn, turn)
            nx = min(size - 1, max(0, int(x + length * math.cos(angle))))
            ny = min(size - 1, max(0, int(y + length * math.sin(angle))))
            segments.append((2 * x + 1, 2 * y + 1, 2 * nx + 1, 2 * ny + 1, width))
            x, y = nx, ny
    return segments


def _boxes(rng: random.Random, family: MaskFamily, size: int) -> list[tuple[int, int, int, int]]:
    boxes = []
    for _ in range(rng.randint(*family.box_count)):
        width = min(size, max(1, round(rng.uniform(*family.box_size) * size)))
        height = min(size, max(1, round(rng.uniform(*family.box_size) * size)))
        x0, y0 = rng.randrange(size - width + 1), rng.randrange(size - height + 1)
        boxes.append((x0, y0, x0 + width, y0 + height))
    return boxes


def _keep(rng: random.Random, family: MaskFamily, size: int) -> tuple[int, int, int, int]:
    sides = [rng.random() < 0.5 for _ in range(4)]
    if not any(sides):
        sides[rng.randrange(4)] = True
    left, top, right, bottom = (round(rng.uniform(*family.outpaint_margin) * size) if on else 0 for on in sides)
    return left, top, size - right, size - bottom


def draw(sample_id: str, family: MaskFamily, size: int) -> tuple[str, list, list, tuple[int, int, int, int]]:
    """One sample's kind and shapes: ``(kind, segments, boxes, keep)`` (see :class:`MaskParams`)."""
    rng = sample_rng(sample_id, family.seed)
    kind = rng.choices(KINDS, weights=family.weights)[0]
    segments = _strokes(rng, family, size) if kind == "strokes" else []
    boxes = _boxes(rng, family, size) if kind == "boxes" else []
    keep = _keep(rng, family, size) if kind == "outpaint" else (0, 0, size, size)
    return kind, segments, boxes, keep


def batch_params(sample_ids: list[str], family: MaskFamily, size: int, rows: int) -> MaskParams:
    """The shapes of ``sample_ids`` as fixed-size CPU tensors of ``rows >= len(sample_ids)`` rows.

    Padding rows (and unused slots) draw nothing, so a batch always has one shape: a compiled
    rasterizer compiles once.
    """
    far = -8 * size  # a segment here, of radius 1, covers no pixel
    segments = torch.tensor([far, far, far, far, 1], dtype=torch.int64).repeat(rows, family.max_segments, 1)
    boxes = torch.zeros((rows, family.box_count[1], 4), dtype=torch.int64)
    keep = torch.tensor([0, 0, size, size], dtype=torch.int64).repeat(rows, 1)
    for row, sample_id in enumerate(sample_ids):
        _, seg, box, kept = draw(sample_id, family, size)
        if seg:
            segments[row, : len(seg)] = torch.tensor(seg, dtype=torch.int64)
        if box:
            boxes[row, : len(box)] = torch.tensor(box, dtype=torch.int64)
        keep[row] = torch.tensor(kept, dtype=torch.int64)
    return MaskParams(segments, boxes, keep)


def _rasterize(segments: torch.Tensor, boxes: torch.Tensor, keep: torch.Tensor, size: int) -> torch.Tensor:
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


_COMPILED = {}


def _compiled_rasterizer(device: torch.device):
    """On CUDA, the rasterizer as one fused kernel (torch.compile); eager elsewhere.

    Eager, the (N, S, size, size) int64 intermediates cost tens of passes over memory per segment;
    compiled, each pixel loops over the segments in registers. Integer arithmetic gives the same
    bits either way. A failure to compile (no compiler) falls back to eager, with a warning.
    """
    if device.type != "cuda":
        return None
    if "cuda" not in _COMPILED:
        try:
            _COMPILED["cuda"] = torch.compile(_rasterize, dynamic=False, fullgraph=True)
        except Exception as error:  # torch.compile is optional for correctness; say why it is not used
            logger.warning("inpaint-fused precompute: torch.compile unavailable (%s); masks rasterized eagerly", error)
            _COMPILED["cuda"] = None
    return _COMPILED["cuda"]


def rasterize(params: MaskParams, size: int, rows_per_chunk: int = 0) -> torch.Tensor:
    """The masks of a batch, on the params' device: ``(N, size, size)`` float32 of 0/1 (1 = repaint).

    Shape:
        params: see :class:`MaskParams` (N rows) -> ``(N, size, size)``.

    Example:
        >>> params = batch_params(["a.jpg", "b.jpg"], MaskFamily(), 64, rows=2)
        >>> rasterize(params, 64).shape
        torch.Size([2, 64, 64])
    """
    with torch.inference_mode():  # one grad mode for every caller: the compiled function's guards never differ
        return _rasterize_batch(params, size, rows_per_chunk)


def _rasterize_batch(params: MaskParams, size: int, rows_per_chunk: int) -> torch.Tensor:
    device = params.segments.device
    compiled = _compiled_rasterizer(device)
    if compiled is not None:
        try:
            return compiled(*params, size).to(torch.float32)
        except Exception as error:  # a backend that cannot build the kernel; the eager path gives the same bits
            logger.warning("inpaint-fused precompute: compiled rasterizer failed (%s); masks rasterized eagerly", error)
            _COMPILED["cuda"] = None
    # Eager: bound the (rows, segments, size, size) intermediates to ~2^24 elements per chunk.
    segments = max(1, params.segments.shape[1])
    rows = rows_per_chunk or max(1, (1 << 24) // (segments * size * size))
    n = params.segments.shape[0]
    out = torch.empty((n, size, size), dtype=torch.float32, device=device)
    for start in range(0, n, rows):
        part = [t[start : start + rows] for t in params]
        out[start : start + rows] = _rasterize(*part, size)
    return out


def masks_for(sample_ids: list[str], family: MaskFamily, size: int, device: torch.device) -> torch.Tensor:
    """Draw and rasterize the masks of ``sample_ids`` on ``device``: ``(len(ids), size, size)`` float32."""
    params = batch_params(sample_ids, family, size, len(sample_ids))
    return rasterize(MaskParams(*(t.to(device) for t in params)), size)
