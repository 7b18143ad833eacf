"""composite_masked against ComfyUI's ImageCompositeMasked (reference.composite_masked_node), both paths."""

from __future__ import annotations

import pytest
import torch
from helpers import OPCHECK, poisoned_allocations
from hypothesis import given, settings
from hypothesis import strategies as st

import inpaint_fused as ifd
from inpaint_fused import _backend, reference
from inpaint_fused.ops import composite_masked

ON_GPU = torch.cuda.is_available()
DEVICE = torch.device("cuda" if ON_GPU else "cpu")


@pytest.fixture(params=["kernel", "torch"])
def path(request, monkeypatch):
    if request.param == "torch":
        monkeypatch.setattr(_backend, "uses_triton", lambda device: False)
    return request.param


def rand(shape, device, g, dtype=torch.float32):
    return torch.rand(shape, generator=g, dtype=torch.float64).to(device=device, dtype=dtype)


def check(destination, source, x, y, resize_source=False, mask=None):
    with poisoned_allocations():
        out = ifd.composite_masked(destination, source, x, y, resize_source, mask)
    want = reference.composite_masked_node(destination, source, x, y, resize_source, mask)
    assert out.shape == want.shape and out.dtype == want.dtype and out.device == want.device
    assert torch.equal(out, want), (x, y, resize_source, (out != want).sum())
    return out


# (destination, source, x, y, resize_source, mask shape or None)
CASES = [
    ((2, 20, 30, 3), (1, 7, 9, 3), 5, 3, False, None),
    ((2, 20, 30, 3), (3, 7, 9, 3), 25, 17, False, (7, 9)),  # past the right and bottom border, source batch cut
    ((2, 20, 30, 3), (1, 7, 9, 3), 30, 20, False, (1, 7, 9)),  # window of nothing
    ((2, 20, 30, 3), (1, 7, 9, 3), 16384, 0, False, None),  # offsets clamped to the destination
    ((3, 20, 30, 3), (2, 25, 40, 3), 2, 1, False, (2, 11, 13)),  # larger source, smaller mask, batches repeated
    ((2, 20, 30, 3), (1, 7, 9, 3), 0, 0, True, (3, 6, 6)),  # resize_source, mask batch 3 cut to 2
    ((1, 20, 30, 3), (2, 7, 9, 1), 5, 3, True, None),
    ((2, 19, 31, 3), (1, 7, 9, 4), 4, 4, False, (2, 1, 7, 9)),  # alpha: the source is cut to 3 channels
    ((2, 20, 30, 4), (1, 7, 9, 1), 5, 3, False, (7, 9)),  # alpha: destination + a channel of 1.0
    ((2, 20, 30, 3), (1, 7, 9, 3), 0, 0, False, (40, 50)),  # larger mask
]


def run_case(case, device, dtype=torch.float32):
    dst_shape, src_shape, x, y, resize, mask_shape = case
    g = torch.Generator().manual_seed(hash(case[:4]) % 2**31)
    mask = None if mask_shape is None else rand(mask_shape, device, g)
    check(rand(dst_shape, device, g, dtype), rand(src_shape, device, g, dtype), x, y, resize, mask)


@pytest.mark.parametrize("case", CASES, ids=[str(c[:4]) for c in CASES])
def test_matches_stock(device, path, case):
    run_case(case, device)


@pytest.mark.parametrize("case", [CASES[0], CASES[5], CASES[8]], ids=str)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_dtypes(device, path, case, dtype):
    """Each product, difference and sum rounded to the half type, as PyTorch's separate ops do."""
    run_case(case, device, dtype)


def test_mixed_dtypes_and_float64(device, path):
    g = torch.Generator().manual_seed(3)
    dst, src = rand((2, 16, 18, 3), device, g, torch.float16), rand((1, 9, 9, 3), device, g, torch.bfloat16)
    check(dst, src, 3, 4, False, rand((9, 9), device, g))
    check(dst, src, 3, 4, False, None)
    check(dst.double(), src.double(), 3, 4, True, rand((1, 5, 5), device, g, torch.float64))


def test_views_and_channels_last(device, path):
    g = torch.Generator().manual_seed(4)
    big = rand((2, 30, 40, 4), device, g)
    dst = big[:, 3:25, 2:38, :3]  # a sliced view: no channel is contiguous
    src = rand((2, 3, 12, 10), device, g).movedim(1, -1)  # NCHW memory seen as an IMAGE
    mask = rand((2, 10, 12), device, g).transpose(1, 2)
    check(dst, src, 7, 1, False, mask)
    check(dst, src, 7, 1, True, mask)


def test_blend_values(device, path):
    dst = torch.zeros(1, 4, 4, 3, device=device)
    src = torch.ones(1, 2, 2, 3, device=device)
    out = check(dst, src, 3, 1, False, torch.tensor([[0.25, 0.5], [0.75, 1.0]], device=device))
    assert out[0, :, :, 0].tolist() == [[0, 0, 0, 0], [0, 0, 0, 0.25], [0, 0, 0, 0.75], [0, 0, 0, 0]]


@settings(max_examples=15 if not ON_GPU else 100, deadline=None)
@given(
    dst=st.tuples(st.integers(1, 3), st.integers(1, 16), st.integers(1, 16), st.sampled_from([1, 3, 4])),
    src=st.tuples(st.integers(1, 3), st.integers(1, 16), st.integers(1, 16), st.sampled_from([1, 3, 4])),
    x=st.integers(0, 20),
    y=st.integers(0, 20),
    resize=st.booleans(),
    mask=st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 12), st.integers(1, 12))),
    seed=st.integers(0, 2**16),
)
def test_fuzz_against_stock(dst, src, x, y, resize, mask, seed):
    if dst[3] > src[3] != 1:
        src = (*src[:3], 1)  # the only source the alpha fix lets a wider destination take
    g = torch.Generator().manual_seed(seed)
    args = (rand(dst, DEVICE, g), rand(src, DEVICE, g), x, y, resize, None if mask is None else rand(mask, DEVICE, g))
    check(*args)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_backend, "uses_triton", lambda device: False)
        check(*args)


def test_bad_input_names_the_argument():
    image = torch.rand(1, 8, 8, 3)
    with pytest.raises(ValueError, match="source has 3 channels and destination 4"):
        ifd.composite_masked(torch.rand(1, 8, 8, 4), image, 0, 0)
    with pytest.raises(RuntimeError):  # the stock node fails there too, less clearly
        reference.composite_masked_node(torch.rand(1, 8, 8, 4), image, 0, 0, False)
    with pytest.raises(ValueError, match="destination"):
        ifd.composite_masked(torch.rand(8, 8, 3), image, 0, 0)
    with pytest.raises(TypeError, match="source"):
        ifd.composite_masked(image, image.to(torch.uint8), 0, 0)
    with pytest.raises(ValueError, match="x must be >= 0"):
        ifd.composite_masked(image, image, -1, 0)
    with pytest.raises(TypeError, match="resize_source"):
        ifd.composite_masked(image, image, 0, 0, 1)
    with pytest.raises(ValueError, match="mask"):
        ifd.composite_masked(image, image, 0, 0, False, torch.rand(8))


def test_opcheck(device):
    g = torch.Generator().manual_seed(5)
    dst, src, mask = rand((2, 12, 14, 3), device, g), rand((1, 5, 6, 3), device, g), rand((1, 4, 4), device, g)
    op = torch.ops.inpaint_fused.composite_masked
    torch.library.opcheck(op, (dst, src, 3, 2, False, mask), test_utils=OPCHECK)
    torch.library.opcheck(op, (dst, src, 3, 2, True, None), test_utils=OPCHECK)


def test_compile_fullgraph_of_the_whole_chain(device):
    """threshold -> feather -> conditioning prep -> composite, as one compiled graph, equals the stock chain."""
    torch._dynamo.reset()
    g = torch.Generator().manual_seed(6)
    pixels, raw = rand((2, 19, 26, 3), device, g), rand((1, 11, 13), device, g)

    def chain(fused, pixels, raw):
        if fused:
            mask = ifd.feather_mask(ifd.threshold_mask(raw, 0.4), 2, 1, 3, 4)
            filled, cond_mask = ifd.prepare_inpaint_conditioning(pixels, mask)
            return filled, cond_mask, ifd.composite_masked(pixels, filled, 1, 2, False, mask)
        mask = reference.feather_mask_node(reference.threshold_mask_node(raw, 0.4), 2, 1, 3, 4)
        filled, cond_mask = reference.inpaint_model_conditioning_prepare(pixels, mask)
        return filled, cond_mask, reference.composite_masked_node(pixels, filled, 1, 2, False, mask)

    compiled = torch.compile(chain, fullgraph=True)
    for got, want in zip(compiled(True, pixels, raw), chain(False, pixels, raw), strict=True):
        assert torch.equal(got, want)


@pytest.mark.gpu
@pytest.mark.parametrize("tile", [None, (2, 2048, 8)], ids=str)
@pytest.mark.parametrize("resize", [False, True])
def test_gpu_kernel_equals_stock_on_the_gpu(monkeypatch, resize, tile):
    if tile is not None:
        monkeypatch.setattr(composite_masked, "GPU_TILE", tile)
    g = torch.Generator().manual_seed(7)
    dst, src = rand((4, 1024, 1000, 3), "cuda", g), rand((2, 700, 513, 3), "cuda", g)
    mask = rand((1, 350, 300), "cuda", g)
    out = ifd.composite_masked(dst, src, 400, 333, resize, mask)
    assert torch.equal(out, reference.composite_masked_node(dst, src, 400, 333, resize, mask))
