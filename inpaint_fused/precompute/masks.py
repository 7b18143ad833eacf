"""Random inpainting masks: the shapes of a whole batch drawn at once, then rasterized on the device.

The family (documented in ``docs/precompute.md``): each sample draws one kind, by weight, then
its shapes, all in pixels of the ``size x size`` crop:

- ``strokes`` (LaMa-style): 1..n polylines; each starts at a uniform pixel with a uniform
  direction, turns by a uniform angle in ``[-turn, turn]`` at each vertex, each segment of a
  uniform length, the whole stroke of one uniform width, drawn with round caps and joints.
- ``boxes``: 1..n axis-aligned rectangles of uniform side lengths at uniform positions.
- ``outpaint``: borders: each side is masked with probability 1/2 (at least one side) to a
  uniform depth; the rest of the image is kept.

Determinism. A sample's key is ``blake2b(f"{seed}\\0{id}")`` (64 bits, on the host). Draw ``j`` of
a sample is a counter-based hash of (key, j): no state, so a whole batch draws every parameter
at once: one Triton kernel on CUDA, int64 torch ops elsewhere (a precompute run draws in its
decoding workers, on CPU tensors). Everything after the hash is integer
arithmetic (uniform integers by multiply-shift, directions from a fixed-point cosine table built
once on the host), and rasterization is exact integer geometry: a sample's mask depends on its id,
the seed, the size and the family only, never on the batch, the rank or the device.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch

from .. import _backend
from ..ops import random_masks as random_masks_op

KINDS = ("strokes", "boxes", "outpaint")
MAX_SIZE = 8192  # int64 geometry is exact up to here (see ``ops.random_masks``); slots of a draw index below
MAX_SLOTS = 1024  # strokes per mask, vertices per stroke, boxes per mask
FIELD_SHIFT = 20  # a draw's counter: (field << FIELD_SHIFT) | slot, slot = stroke * MAX_SLOTS + segment

TURNS = 4096  # directions per full turn
FIXED = 16  # fixed-point bits of the cosine table
_WORD = (1 << 32) - 1
_HASH_1, _HASH_2 = 0x7FEB352D, 0x31848BAB  # odd, below 2**31: a 32-bit word times one stays below 2**63


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
            if not (minimum <= low <= high <= MAX_SLOTS):
                raise ValueError(f"{name} must be a range {minimum} <= low <= high <= {MAX_SLOTS}, got {low}:{high}")
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
    rectangle ``x0, y0, x1, y1`` of an outpaint mask (the whole image otherwise). ``kinds (N,)``:
    the index into :data:`KINDS`, ``-1`` for a padding row. All int64.
    """

    segments: torch.Tensor
    boxes: torch.Tensor
    keep: torch.Tensor
    kinds: torch.Tensor


def sample_keys(sample_ids: list[str], seed: int) -> torch.Tensor:
    """The samples' 64-bit keys as ``(N, 2)`` int64 CPU words (low, high), each in ``[0, 2**32)``."""
    words = []
    for sample_id in sample_ids:
        key = int.from_bytes(hashlib.blake2b(f"{seed}\0{sample_id}".encode(), digest_size=8).digest(), "little")
        words.append((key & _WORD, key >> 32))
    return torch.tensor(words, dtype=torch.int64).reshape(len(sample_ids), 2)


def hash32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer mixer (xorshift-multiply, two rounds) on int64 tensors holding words in ``[0, 2**32)``.

    Each product is a word times a constant below ``2**31``: below ``2**63``, exact in int64 on every device.
    """
    x = x ^ (x >> 16)
    x = (x * _HASH_1) & _WORD
    x = x ^ (x >> 15)
    x = (x * _HASH_2) & _WORD
    return x ^ (x >> 16)


def _uniform(words: torch.Tensor, low, high) -> torch.Tensor:
    """Integers uniform in ``[low, high]`` (bias below ``(high - low + 1) / 2**32``) from words in ``[0, 2**32)``."""
    return low + ((words * (high - low + 1)) >> 32)


@functools.cache
def cosine_table() -> tuple[int, ...]:
    """``round(2**FIXED * cos(2 pi i / TURNS))`` for ``i < TURNS``: computed once, on the host, in float64.

    No entry lies within ``1e-6`` of a rounding boundary (tested), so a last-bit difference between
    two hosts' ``math.cos`` cannot change the table.
    """
    return tuple(round(math.cos(2 * math.pi * i / TURNS) * (1 << FIXED)) for i in range(TURNS))


class _Layout(NamedTuple):
    """Where each parameter's draws sit in a sample's row of draws, and the draw counters."""

    columns: dict  # name -> (start, shape)
    counters: tuple[int, ...]


# Each draw's counter is (field << FIELD_SHIFT) | slot: fixed per field and slot, so adding fields or
# slots never moves another draw.
_FIELDS = {
    "kind": 0, "stroke_count": 1, "stroke_width": 2, "stroke_x": 3, "stroke_y": 4, "stroke_angle": 5,
    "stroke_vertices": 6, "stroke_length": 7, "stroke_turn": 8, "box_count": 9, "box_width": 10,
    "box_height": 11, "box_x": 12, "box_y": 13, "sides": 14, "fallback_side": 15, "depth": 16,
}  # fmt: skip


@functools.cache
def _layout(strokes: int, segments: int, boxes: int) -> _Layout:
    shapes = {
        "kind": (1,), "stroke_count": (1,), "stroke_width": (strokes,), "stroke_x": (strokes,),
        "stroke_y": (strokes,), "stroke_angle": (strokes,), "stroke_vertices": (strokes,),
        "stroke_length": (strokes, segments), "stroke_turn": (strokes, segments), "box_count": (1,),
        "box_width": (boxes,), "box_height": (boxes,), "box_x": (boxes,), "box_y": (boxes,), "sides": (1,),
        "fallback_side": (1,), "depth": (4,),
    }  # fmt: skip
    columns, counters = {}, []
    for name, shape in shapes.items():
        columns[name] = (len(counters), shape)
        if len(shape) == 1:
            slots = range(shape[0])
        else:
            slots = (s * MAX_SLOTS + v for s in range(shape[0]) for v in range(shape[1]))
        counters.extend((_FIELDS[name] << FIELD_SHIFT) | slot for slot in slots)
    return _Layout(columns, tuple(counters))


def _pixels(fraction: float, size: int, minimum: int = 0, maximum: int = MAX_SIZE * 2) -> int:
    """A fraction of the size in whole pixels, clamped (host arithmetic: the same on every machine)."""
    return min(maximum, max(minimum, round(fraction * size)))


class DrawSpec(NamedTuple):
    """The family at one size, as the integers both draw paths use (converted once, on the host).

    Ranges are inclusive ``(lo, hi)`` in whole pixels (widths in half pixels); ``first``/``second``
    the kind thresholds on a 32-bit draw; ``strokes``, ``segments``, ``boxes`` the padded counts.
    """

    size: int
    first: int
    second: int
    strokes: int
    segments: int
    boxes: int
    count_lo: int
    count_hi: int
    width_lo: int
    width_hi: int
    vertices_lo: int
    vertices_hi: int
    length_lo: int
    length_hi: int
    turn: int
    box_count_lo: int
    box_count_hi: int
    side_lo: int
    side_hi: int
    depth_lo: int
    depth_hi: int


def draw_spec(family: MaskFamily, size: int) -> DrawSpec:
    """The integers of ``family`` at ``size``: probabilities in units of 2^-32, lengths rounded to pixels.

    Raises:
        ValueError: ``size`` outside ``[1, MAX_SIZE]``.
    """
    if not 1 <= size <= MAX_SIZE:
        raise ValueError(f"size must be in [1, {MAX_SIZE}] for exact mask geometry, got {size}")
    total = sum(family.weights)
    return DrawSpec(
        size,
        round(family.weights[0] / total * 2**32),
        round((family.weights[0] + family.weights[1]) / total * 2**32),
        family.stroke_count[1],
        family.stroke_vertices[1] - 1,
        family.box_count[1],
        *family.stroke_count,
        *(_pixels(f, size, 1) for f in family.stroke_width),
        *family.stroke_vertices,
        *(_pixels(f, size) for f in family.stroke_length),
        round(family.stroke_turn / 360 * TURNS),
        *family.box_count,
        *(_pixels(f, size, 1, size) for f in family.box_size),
        *(_pixels(f, size) for f in family.outpaint_margin),
    )


def draw_params(keys: torch.Tensor, family: MaskFamily, size: int) -> MaskParams:
    """The shapes of the samples with these keys, drawn at once on ``keys.device``.

    Draw ``j`` of a sample with key words ``(k0, k1)`` is ``hash32(hash32(c_j ^ k0) ^ k1)``,
    ``c_j = (field << 20) | slot``; an integer uniform in ``[lo, hi]`` is ``lo + (draw * (hi - lo + 1)) >> 32``.
    See ``docs/precompute.md`` for every field. One Triton kernel where the backend runs Triton,
    else int64 torch ops over the whole batch: the same integers.

    Shape:
        keys ``(N, 2)`` int64 from :func:`sample_keys` -> :class:`MaskParams` of N rows.

    Raises:
        ValueError: ``size`` outside ``[1, MAX_SIZE]``, or ``keys`` not ``(N, 2)`` int64.

    Example:
        >>> params = draw_params(sample_keys(["a.jpg"], seed=0), MaskFamily(), 64)
        >>> params.segments.shape, params.boxes.shape, params.keep.shape
        (torch.Size([1, 20, 5]), torch.Size([1, 3, 4]), torch.Size([1, 4]))
    """
    spec = draw_spec(family, size)
    if keys.dtype != torch.int64 or keys.dim() != 2 or keys.shape[1] != 2:
        raise ValueError(f"keys must be (N, 2) int64 (sample_keys), got {tuple(keys.shape)} {keys.dtype}")
    if _backend.uses_triton(keys.device) and keys.shape[0] > 0:
        table = _device_table(keys.device)
        return MaskParams(*random_masks_op.draw_params(keys.contiguous(), table, spec, FIXED, FIELD_SHIFT, MAX_SLOTS))
    return draw_params_torch(keys, spec)


def _device_table(device: torch.device) -> torch.Tensor:
    key = str(device)
    if key not in _TABLES:
        _TABLES[key] = torch.tensor(cosine_table(), dtype=torch.int64, device=device)
    return _TABLES[key]


_TABLES: dict[str, torch.Tensor] = {}


def draw_params_torch(keys: torch.Tensor, spec: DrawSpec) -> MaskParams:
    """:func:`draw_params` in int64 torch ops over the whole batch (any device): the reference of the kernel."""
    device, n, size = keys.device, keys.shape[0], spec.size
    strokes, segments, boxes = spec.strokes, spec.segments, spec.boxes
    layout = _layout(strokes, segments, boxes)
    counters = torch.tensor(layout.counters, dtype=torch.int64, device=device)
    words = hash32(hash32(counters ^ keys[:, :1]) ^ keys[:, 1:])

    def column(name):
        start, shape = layout.columns[name]
        return words[:, start : start + math.prod(shape)].reshape(n, *shape)

    kinds = (column("kind") >= spec.first).long() + (column("kind") >= spec.second).long()  # (n, 1)

    # Strokes: vertex k + 1 = clamp(vertex k + round(length * (cos, sin)(angle))), angles in 1/TURNS turns.
    table = _device_table(device)
    count = _uniform(column("stroke_count"), spec.count_lo, spec.count_hi)  # (n, 1)
    width = _uniform(column("stroke_width"), spec.width_lo, spec.width_hi)  # half pixels: radius width / 2 px
    start = torch.stack([_uniform(column("stroke_x"), 0, size - 1), _uniform(column("stroke_y"), 0, size - 1)], -1)
    angle0 = _uniform(column("stroke_angle"), 0, TURNS - 1)
    used = _uniform(column("stroke_vertices"), spec.vertices_lo, spec.vertices_hi) - 1  # segments of each stroke
    length = _uniform(column("stroke_length"), spec.length_lo, spec.length_hi)
    turns = _uniform(column("stroke_turn"), -spec.turn, spec.turn)
    angle = (angle0[..., None] + turns.cumsum(-1)) & (TURNS - 1)
    direction = torch.stack([table[angle], table[(angle - TURNS // 4) & (TURNS - 1)]], -1)  # cos, sin
    step = (length[..., None] * direction + (1 << (FIXED - 1))) >> FIXED  # (n, strokes, segments, 2)
    points = [start]
    for k in range(segments):
        points.append((points[-1] + step[:, :, k]).clamp(0, size - 1))
    points = torch.stack(points, 2) * 2 + 1  # (n, strokes, segments + 1, 2) in half pixels
    radius = width[..., None, None].expand(n, strokes, segments, 1)
    shapes = torch.cat([points[:, :, :-1], points[:, :, 1:], radius], -1)
    stroke = torch.arange(strokes, device=device)[:, None]
    segment = torch.arange(segments, device=device)
    drawn = (kinds[..., None] == 0) & (stroke < count[..., None]) & (segment < used[..., None])
    shapes = torch.where(drawn[..., None], shapes, _far_segment(size, device)).reshape(n, -1, 5)

    # Boxes: sides uniform, then the position uniform among those inside the image.
    sides = [_uniform(column(f"box_{side}"), spec.side_lo, spec.side_hi) for side in ("width", "height")]
    corner = [_uniform(column(f"box_{axis}"), 0, size - side) for axis, side in zip("xy", sides, strict=True)]
    count = _uniform(column("box_count"), spec.box_count_lo, spec.box_count_hi)
    drawn = (kinds == 1) & (torch.arange(boxes, device=device) < count)
    box = torch.stack([corner[0], corner[1], corner[0] + sides[0], corner[1] + sides[1]], -1) * drawn[..., None]

    # Outpaint: bit i of one draw says whether side i (left, top, right, bottom) is masked; none: one uniform side.
    bits = torch.arange(4, device=device)
    masked = (column("sides") >> bits) & 1
    fallback = bits == _uniform(column("fallback_side"), 0, 3)
    masked = masked | (fallback & (masked.sum(-1, keepdim=True) == 0)).long()
    depth = _uniform(column("depth"), spec.depth_lo, spec.depth_hi) * masked * (kinds == 2)
    keep = torch.stack([depth[:, 0], depth[:, 1], size - depth[:, 2], size - depth[:, 3]], -1)
    return MaskParams(shapes, box, keep, kinds[:, 0])


def _far_segment(size: int, device) -> torch.Tensor:
    """A segment of radius 1 far outside the image: it covers no pixel."""
    far = -8 * size
    return torch.tensor([far, far, far, far, 1], dtype=torch.int64, device=device)


def pad_params(params: MaskParams, rows: int, size: int) -> MaskParams:
    """``params`` followed by empty rows (no shape, nothing masked) up to ``rows`` rows."""
    n = params.kinds.shape[0]
    if rows < n:
        raise ValueError(f"rows must be >= the {n} samples, got {rows}")
    device, extra = params.kinds.device, rows - n
    segments = _far_segment(size, device).repeat(extra, params.segments.shape[1], 1)
    boxes = params.boxes.new_zeros((extra, params.boxes.shape[1], 4))
    keep = torch.tensor([0, 0, size, size], dtype=torch.int64, device=device).repeat(extra, 1)
    kinds = params.kinds.new_full((extra,), -1)
    return MaskParams(*(torch.cat(pair) for pair in zip(params, (segments, boxes, keep, kinds), strict=True)))


def batch_params(sample_ids: list[str], family: MaskFamily, size: int, rows: int) -> MaskParams:
    """The shapes of ``sample_ids`` as fixed-size CPU tensors of ``rows >= len(sample_ids)`` rows.

    Padding rows draw nothing, so a batch always has one shape.

    Example:
        >>> params = batch_params(["a.jpg", "b.jpg"], MaskFamily(), 64, rows=4)
        >>> params.segments.shape, params.kinds.tolist()[2:]
        (torch.Size([4, 20, 5]), [-1, -1])
    """
    return pad_params(draw_params(sample_keys(sample_ids, family.seed), family, size), rows, size)


def shapes(params: MaskParams, row: int) -> tuple[str, list, list, tuple[int, int, int, int]]:
    """One row's kind and shapes as Python lists, without the padding: ``(kind, segments, boxes, keep)``."""
    kind = int(params.kinds[row])
    segments = [tuple(s) for s in params.segments[row].tolist() if s[0] >= 0]
    boxes = [tuple(b) for b in params.boxes[row].tolist() if b[2] > b[0]]
    return KINDS[kind], segments, boxes, tuple(params.keep[row].tolist())


def draw(sample_id: str, family: MaskFamily, size: int) -> tuple[str, list, list, tuple[int, int, int, int]]:
    """One sample's kind and shapes: ``(kind, segments, boxes, keep)`` (see :class:`MaskParams`)."""
    return shapes(draw_params(sample_keys([sample_id], family.seed), family, size), 0)


def rasterize(params: MaskParams, size: int, rows_per_chunk: int = 0) -> torch.Tensor:
    """The masks of a batch, on the params' device: ``(N, size, size)`` float32 of 0/1 (1 = repaint).

    The Triton kernel where the backend runs Triton (CUDA, or the interpreter), else the torch path
    (``rows_per_chunk`` rows at a time; 0 = bounded memory): the same bits.

    Shape:
        params: see :class:`MaskParams` (N rows) -> ``(N, size, size)``.

    Example:
        >>> params = batch_params(["a.jpg", "b.jpg"], MaskFamily(), 64, rows=2)
        >>> rasterize(params, 64).shape
        torch.Size([2, 64, 64])
    """
    if rows_per_chunk:
        return random_masks_op.rasterize(params.segments, params.boxes, params.keep, size, rows_per_chunk)
    return random_masks_op.random_masks_op(params.segments, params.boxes, params.keep, size)


def masks_for(sample_ids: list[str], family: MaskFamily, size: int, device: torch.device) -> torch.Tensor:
    """Draw and rasterize the masks of ``sample_ids`` on ``device``: ``(len(ids), size, size)`` float32.

    Only the keys are computed on the host (a hash per id); the draw and the rasterization run on ``device``.
    """
    return rasterize(draw_params(sample_keys(sample_ids, family.seed).to(device), family, size), size)
