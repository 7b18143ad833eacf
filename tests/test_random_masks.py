"""The random mask family of ``inpaint-fused precompute``: the documented draw, kernels vs torch path, determinism.

The draw is checked against a scalar Python transcription of ``docs/precompute.md``; the Triton draw
and rasterizer (interpreted here, compiled on a GPU) against the int64 torch path with
``torch.equal``; masks against Pillow's drawing of the same shapes (boundary pixels only may differ).
"""

import hashlib
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import OPCHECK, poisoned_allocations
from hypothesis import given, settings
from hypothesis import strategies as st

from inpaint_fused.ops import random_masks as random_masks_op
from inpaint_fused.precompute import MaskFamily, batch_params, draw_params, masks_for, rasterize, sample_keys
from inpaint_fused.precompute import masks as masks_module

INTERPRETED_OR_GPU = pytest.mark.skipif(
    not masks_module._backend.uses_triton(torch.device("cuda" if torch.cuda.is_available() else "cpu")),
    reason="no Triton here (neither CUDA nor the interpreter)",
)
EDGE_FAMILY = MaskFamily(
    weights=(1.0, 1.0, 1.0), stroke_count=(3, 5), stroke_vertices=(2, 4), stroke_length=(0.0, 2.0),
    stroke_width=(1.0, 1.0), stroke_turn=180.0, box_count=(2, 2), box_size=(1.0, 1.0), outpaint_margin=(0.0, 0.5),
    seed=7,
)  # fmt: skip


def _device():
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _scalar_draw(sample_id: str, family: MaskFamily, size: int):
    """``docs/precompute.md`` "How the draws are made", one sample at a time in plain Python integers."""
    word32 = (1 << 32) - 1
    key = int.from_bytes(hashlib.blake2b(f"{family.seed}\0{sample_id}".encode(), digest_size=8).digest(), "little")
    k0, k1 = key & word32, key >> 32

    def mix(x):
        x ^= x >> 16
        x = x * 0x7FEB352D & word32
        x ^= x >> 15
        x = x * 0x31848BAB & word32
        return x ^ (x >> 16)

    def word(field, slot):
        return mix(mix(((field << 20) | slot) ^ k0) ^ k1)

    def uniform(field, slot, lo, hi):
        return lo + (word(field, slot) * (hi - lo + 1) >> 32)

    def pixels(fraction, low=0, high=10**9):
        return min(high, max(low, round(fraction * size)))

    cos = [round(math.cos(2 * math.pi * i / 4096) * 65536) for i in range(4096)]
    w, total = family.weights, sum(family.weights)
    kind = int(word(0, 0) >= round(w[0] / total * 2**32)) + int(word(0, 0) >= round((w[0] + w[1]) / total * 2**32))
    segments, boxes, keep = [], [], (0, 0, size, size)
    if kind == 0:
        turn = round(family.stroke_turn / 360 * 4096)
        for s in range(uniform(1, 0, *family.stroke_count)):
            width = uniform(2, s, *(pixels(f, 1) for f in family.stroke_width))
            x, y = uniform(3, s, 0, size - 1), uniform(4, s, 0, size - 1)
            angle = uniform(5, s, 0, 4095)
            for v in range(uniform(6, s, *family.stroke_vertices) - 1):
                length = uniform(7, s * 1024 + v, *(pixels(f) for f in family.stroke_length))
                angle += uniform(8, s * 1024 + v, -turn, turn)
                nx = min(size - 1, max(0, x + ((length * cos[angle % 4096] + 32768) >> 16)))
                ny = min(size - 1, max(0, y + ((length * cos[(angle - 1024) % 4096] + 32768) >> 16)))
                segments.append((2 * x + 1, 2 * y + 1, 2 * nx + 1, 2 * ny + 1, width))
                x, y = nx, ny
    elif kind == 1:
        for b in range(uniform(9, 0, *family.box_count)):
            bw, bh = (uniform(field, b, *(pixels(f, 1, size) for f in family.box_size)) for field in (10, 11))
            x0, y0 = uniform(12, b, 0, size - bw), uniform(13, b, 0, size - bh)
            boxes.append((x0, y0, x0 + bw, y0 + bh))
    else:
        masked = [(word(14, 0) >> i) & 1 for i in range(4)]
        if not any(masked):
            masked[uniform(15, 0, 0, 3)] = 1
        depth = [uniform(16, i, *(pixels(f) for f in family.outpaint_margin)) * masked[i] for i in range(4)]
        keep = (depth[0], depth[1], size - depth[2], size - depth[3])
    return masks_module.KINDS[kind], segments, boxes, keep


@pytest.mark.parametrize(("family", "size"), [(MaskFamily(), 512), (EDGE_FAMILY, 37), (MaskFamily(seed=3), 1)])
def test_draw_follows_the_documented_arithmetic(family, size, monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")  # the torch path; the kernel is compared with it below
    ids = [f"doc/{i}.jpg" for i in range(150)]
    params = batch_params(ids, family, size, rows=len(ids) + 2)
    for row, sample_id in enumerate(ids):
        assert masks_module.shapes(params, row) == _scalar_draw(sample_id, family, size), sample_id
    assert params.kinds[-2:].tolist() == [-1, -1]


@INTERPRETED_OR_GPU
@pytest.mark.parametrize(("family", "size"), [(MaskFamily(), 64), (EDGE_FAMILY, 8192), (EDGE_FAMILY, 1)])
def test_draw_kernel_equals_torch_draw(family, size):
    """70 samples: two programs of 64, the second mostly masked off."""
    keys = sample_keys([f"k/{i}" for i in range(70)], family.seed).to(_device())
    with poisoned_allocations():
        got = draw_params(keys, family, size)
    want = masks_module.draw_params_torch(keys, masks_module.draw_spec(family, size))
    for name, a, b in zip(masks_module.MaskParams._fields, got, want, strict=True):
        assert a.dtype == torch.int64 and torch.equal(a, b), name


def _hand_shapes(size):
    """Edge cases for the rasterizer: a dot, radius 1, a segment across tiles, a huge radius, boxes, borders."""
    far = -8 * size
    s = 2 * size - 1
    segments = torch.tensor(
        [
            [[1, 1, 1, 1, 1], [s, 1, 1, s, 1], [far, far, far, far, 1]],
            [[21, 63, 59, 1, 7], [s, s, s, s, 4], [41, 41, 41, 41, 3 * size]],
            [[far, far, far, far, 1]] * 3,
            [[far, far, far, far, 1]] * 3,
        ]
    )  # fmt: skip
    boxes = torch.tensor([[[0, 0, 0, 0]], [[0, 0, 0, 0]], [[size - 1, 0, size, size]], [[0, 0, size, size]]])
    keep = torch.tensor([[0, 0, size, size], [0, 0, size, size], [3, 5, size - 2, size], [0, 0, size, size]])
    return segments, boxes, keep


@INTERPRETED_OR_GPU
@pytest.mark.parametrize("size", [1, 33, 40])
def test_raster_kernel_equals_torch_path_on_edge_shapes(size):
    device = _device()
    segments, boxes, keep = (t.to(device) for t in _hand_shapes(size))
    with poisoned_allocations():
        got = random_masks_op.rasterize(segments, boxes, keep, size)
    want = random_masks_op.rasterize_torch(segments, boxes, keep, size).float()
    assert got.dtype == torch.float32 and torch.equal(got, want)
    assert want[0].any() and want[1].sum() >= want[0].sum() and want[3].all()
    assert size == 1 or not want[2].all()


@INTERPRETED_OR_GPU
def test_opcheck():
    params = batch_params(["op/a", "op/b"], MaskFamily(weights=(1, 1, 1)), 8, rows=3)
    args = (*(t.to(_device()) for t in params[:3]), 8)
    torch.library.opcheck(torch.ops.inpaint_fused.random_masks, args, test_utils=OPCHECK)


@INTERPRETED_OR_GPU
@settings(max_examples=6, deadline=None)
@given(
    weights=st.tuples(*[st.sampled_from([0.0, 0.5, 1.0, 3.0])] * 3).filter(lambda w: sum(w) > 0),
    count=st.tuples(st.integers(1, 3), st.integers(0, 2)),
    vertices=st.tuples(st.integers(2, 4), st.integers(0, 2)),
    length=st.tuples(st.floats(0, 1), st.floats(0, 1)),
    width=st.tuples(st.floats(0, 0.5), st.floats(0, 0.5)),
    turn=st.floats(0, 180),
    size=st.integers(1, 40),
    seed=st.integers(0, 2**40),
)
def test_fuzz_family_kernels_equal_torch_path(weights, count, vertices, length, width, turn, size, seed):
    family = MaskFamily(
        weights=weights, stroke_count=(count[0], sum(count)), stroke_vertices=(vertices[0], sum(vertices)),
        stroke_length=tuple(sorted(length)), stroke_width=tuple(sorted(width)), stroke_turn=turn,
        box_count=(count[0], sum(count)), seed=seed,
    )  # fmt: skip
    keys = sample_keys([f"f/{i}" for i in range(5)], seed).to(_device())
    params = draw_params(keys, family, size)
    want = masks_module.draw_params_torch(keys, masks_module.draw_spec(family, size))
    assert all(torch.equal(a, b) for a, b in zip(params, want, strict=True))
    got = rasterize(params, size)
    assert torch.equal(got, random_masks_op.rasterize_torch(*want[:3], size).float())


@pytest.mark.gpu
def test_gpu_masks_at_512_equal_the_cpu_torch_path():
    """Compiled kernels, 16 x 16 tiles per mask: the draw and the masks equal the CPU's int64 torch path."""
    family, size = MaskFamily(), 512
    ids = [f"gpu/{i:03d}.jpg" for i in range(12)]
    keys = sample_keys(ids, family.seed)
    cpu = masks_module.draw_params_torch(keys, masks_module.draw_spec(family, size))
    gpu = draw_params(keys.cuda(), family, size)
    assert all(torch.equal(a.cpu(), b) for a, b in zip(gpu, cpu, strict=True))
    want = random_masks_op.rasterize(*cpu[:3], size, rows_per_chunk=1)  # CPU tensors: the torch path
    assert torch.equal(masks_for(ids, family, size, torch.device("cuda")).cpu(), want)


def test_masks_are_the_same_on_any_path_in_any_batch(monkeypatch):
    """Kernels (interpreted or compiled) and the CPU torch path; whole batch, reversed, split, padded."""
    family = MaskFamily(stroke_count=(1, 2), stroke_vertices=(2, 3), box_count=(1, 2))
    ids = [f"batch/{i}.png" for i in range(6)]
    size = 24
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    cpu = masks_for(ids, family, size, torch.device("cpu"))
    padded = rasterize(batch_params(ids[::-1], family, size, rows=9), size, rows_per_chunk=4)
    assert torch.equal(padded[:6], cpu.flip(0)) and not padded[6:].any()
    monkeypatch.undo()
    if not masks_module._backend.uses_triton(_device()):
        pytest.skip("no Triton here: the torch path alone")
    device = _device()
    whole = masks_for(ids, family, size, device).cpu()
    split = torch.cat([masks_for(ids[:1], family, size, device), masks_for(ids[1:], family, size, device)]).cpu()
    assert torch.equal(whole, cpu) and torch.equal(split, cpu)
    assert len({m.flatten().numpy().tobytes() for m in cpu}) == 6


def test_family_statistics_and_bounds(monkeypatch):
    """Over 600 ids: each kind near its weight, every shape in its documented range, every mask non-empty."""
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    family, size = MaskFamily(), 64
    params = batch_params([f"stats/{i:04d}.jpg" for i in range(600)], family, size, 600)
    freq = torch.bincount(params.kinds, minlength=3).double() / 600
    assert torch.allclose(freq, torch.tensor(family.weights, dtype=torch.float64), atol=0.06), freq
    for row in range(600):
        kind, segments, boxes, keep = masks_module.shapes(params, row)
        if kind == "strokes":
            assert 1 <= len(segments) <= family.max_segments
            for ax, ay, bx, by, r in segments:
                assert all(1 <= c <= 2 * size - 1 and c % 2 == 1 for c in (ax, ay, bx, by))
                assert round(0.02 * size) <= r <= round(0.12 * size)
                assert math.hypot(bx - ax, by - ay) / 2 <= 0.3 * size + 1
        elif kind == "boxes":
            assert 1 <= len(boxes) <= 3
            for x0, y0, x1, y1 in boxes:
                assert 0 <= x0 < x1 <= size and 0 <= y0 < y1 <= size
                assert round(0.1 * size) <= min(x1 - x0, y1 - y0) <= max(x1 - x0, y1 - y0) <= round(0.5 * size)
        else:
            x0, y0, x1, y1 = keep
            depths = [x0, y0, size - x1, size - y1]
            assert any(depths) and all(d == 0 or round(0.1 * size) <= d <= round(0.4 * size) for d in depths)
    masks = rasterize(params, size, rows_per_chunk=100)
    assert bool(masks.flatten(1).any(1).all())


def test_cosine_table_does_not_depend_on_the_hosts_libm():
    table = masks_module.cosine_table()
    assert len(table) == masks_module.TURNS and table[0] == 65536 and table[1024] == 0 and table[2048] == -65536
    for i in range(masks_module.TURNS):
        scaled = math.cos(2 * math.pi * i / masks_module.TURNS) * 65536
        assert abs(scaled - math.floor(scaled) - 0.5) > 1e-6, i  # far from a rounding boundary
        assert table[i] == table[-i % masks_module.TURNS]


def test_pillow_drawing_of_the_same_shapes_agrees_but_on_boundary_pixels(monkeypatch):
    """The benchmark's CPU generator draws the same shapes: boxes and borders exactly; strokes but for
    pixels near their edges (Pillow rounds thick lines and ellipses its own way): under 5 % of a 64²
    stroke mask, 95 % of them within 1.5 px of the exact mask's edge, all within 4 px (measured: 4.0)."""
    from scipy import ndimage

    monkeypatch.setenv("TRITON_INTERPRET", "0")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    try:
        from bench_precompute import cpu_masks
    finally:
        sys.path.pop(0)
    family, size = MaskFamily(), 64
    ids = [f"pil/{i}.png" for i in range(60)]
    exact = masks_for(ids, family, size, torch.device("cpu")).bool().numpy()
    params = batch_params(ids, family, size, len(ids))
    distances = []
    for row, pil in enumerate(cpu_masks(ids, family, size)):
        differ = (pil > 127) != exact[row]
        if params.kinds[row] != 0:
            assert not differ.any()
            continue
        assert differ.mean() < 0.05
        to_edge = np.where(
            exact[row], ndimage.distance_transform_edt(exact[row]), ndimage.distance_transform_edt(~exact[row])
        )
        distances.extend(to_edge[differ].tolist())
    assert len(distances) > 100 and np.quantile(distances, 0.95) <= 1.5 and max(distances) <= 4.0


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="size"):
        draw_params(sample_keys(["a"], 0), MaskFamily(), 8193)
    with pytest.raises(ValueError, match="keys"):
        draw_params(torch.zeros(3, dtype=torch.int64), MaskFamily(), 8)
    with pytest.raises(ValueError, match="stroke_count"):
        MaskFamily(stroke_count=(1, 1025))
    with pytest.raises(ValueError, match="rows"):
        batch_params(["a", "b"], MaskFamily(), 8, rows=1)
