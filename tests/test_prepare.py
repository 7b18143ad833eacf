"""The fused ops against the reference: exactness, layouts, dtypes, batches, bad input, torch.library."""

from __future__ import annotations

import contextlib
import subprocess
import sys

import pytest
import torch
from helpers import (
    NEAR_TIE,
    assert_matches,
    expected,
    poisoned_allocations,
    random_mask,
    random_pixels,
    stable_seed,
)
from hypothesis import given, settings
from hypothesis import strategies as st

import inpaint_fused as ifd
from inpaint_fused import reference

ON_GPU = torch.cuda.is_available()


def fused(pixels, mask, value, *, was=False, **kwargs):
    with poisoned_allocations():
        fn = ifd.prepare_inpaint_was if was else ifd.prepare_inpaint
        return fn(pixels, mask, value, **kwargs)


def check(pixels, mask, value, *, was=False, ratio=8, vae_dtype=None, near_tie=NEAR_TIE):
    out = fused(pixels, mask, value, was=was, downscale_ratio=ratio, vae_dtype=vae_dtype)
    ref_pixels, ref_noise, reach = expected(
        pixels, mask, value, was=was, ratio=ratio, vae_dtype=vae_dtype, near_tie=near_tie
    )
    assert_matches(out.noise_mask, ref_noise, reach, "noise_mask")
    assert_matches(out.pixels, ref_pixels, reach, "pixels", channels_last=vae_dtype is None)
    assert out.pixels.is_contiguous() and out.noise_mask.is_contiguous()
    return out


SHAPES = [(8, 8), (37, 53), (64, 40), (23, 97)]
MASK_SIZES = ["same", (5, 7), (90, 61)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("mask_size", MASK_SIZES, ids=str)
@pytest.mark.parametrize("grow", [0, 1, 2, 6, 9])
def test_core_matches_reference(device, shape, mask_size, grow):
    g = torch.Generator().manual_seed(stable_seed(shape, mask_size, grow))
    mask_shape = shape if mask_size == "same" else mask_size
    check(random_pixels((2, *shape, 3), device=device, generator=g), random_mask((1, *mask_shape), device, g), grow)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("mask_size", MASK_SIZES, ids=str)
@pytest.mark.parametrize("offset", [-9, -2, 0, 1, 6])
def test_was_matches_reference(device, shape, mask_size, offset):
    g = torch.Generator().manual_seed(stable_seed(shape, mask_size, offset))
    mask_shape = shape if mask_size == "same" else mask_size
    check(
        random_pixels((1, *shape, 3), device=device, generator=g),
        random_mask((1, *mask_shape), device, g),
        offset,
        was=True,
    )


@pytest.mark.parametrize("grow", range(65))
def test_every_grow_mask_by(device, grow):
    g = torch.Generator().manual_seed(grow)
    mask = random_mask((1, 40, 72), device, g, soft=False, density=0.01)
    check(random_pixels((1, 40, 72, 3), device=device, generator=g), mask, grow)


WAS_OFFSETS = range(-128, 129) if ON_GPU else [-128, -100, -64, -33, -17, -8, -3, -1, 0, 1, 3, 8, 17, 33, 64, 100, 128]


@pytest.mark.parametrize("offset", WAS_OFFSETS)
def test_every_mask_offset_with_a_region_on_the_border(device, offset):
    g = torch.Generator().manual_seed(offset + 1000)
    mask = random_mask((1, 48, 64), device, g, soft=False, density=0.995 if offset < 0 else 0.005)
    mask[:, :20, :12] = 1.0  # touches the top and left borders
    mask[:, 30:, 50:] = 0.0
    mask[:, 40:, 55:] = 1.0  # a small block touching the bottom-right corner
    check(random_pixels((1, 48, 64, 3), device=device, generator=g), mask, offset, was=True)


def test_largest_offsets_by_hand(device):
    pixels = random_pixels((1, 32, 32, 3), device=device)
    full = torch.ones(1, 32, 32, device=device)
    # outside the image counts as masked: a fully masked image does not erode at all
    assert int(check(pixels, full, -128, was=True).noise_mask.sum()) == 32 * 32
    holed = full.clone()
    holed[0, 31, 0] = 0.0  # one unmasked pixel reaches every other within 128
    assert int(check(pixels, holed, -128, was=True).noise_mask.sum()) == 0
    dot = torch.zeros(1, 32, 32, device=device)
    dot[0, 0, 31] = 1.0
    assert int(check(pixels, dot, 128, was=True).noise_mask.sum()) == 32 * 32
    assert int(check(pixels, dot, 1, was=True).noise_mask.sum()) == 4


@pytest.mark.parametrize("vae_dtype", [torch.bfloat16, torch.float16, torch.float32])
@pytest.mark.parametrize("pixel_dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("was", [False, True])
def test_vae_input_is_bit_exact(device, vae_dtype, pixel_dtype, was):
    g = torch.Generator().manual_seed(7)
    pixels = random_pixels((2, 35, 42, 4), pixel_dtype, device, g)
    out = check(pixels, random_mask((2, 35, 42), device, g), 5 if not was else -3, was=was, vae_dtype=vae_dtype)
    assert out.pixels.shape == (2, 3, 32, 40)


@pytest.mark.parametrize("pixel_dtype", [torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("mask_dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_dtypes(device, pixel_dtype, mask_dtype):
    g = torch.Generator().manual_seed(3)
    pixels = random_pixels((1, 33, 47, 3), pixel_dtype, device, g)
    mask = random_mask((1, 33, 47), device, g).to(mask_dtype)
    out = check(pixels, mask, 0)
    assert out.pixels.dtype == pixel_dtype and out.noise_mask.dtype == torch.float32


@pytest.mark.parametrize("mask_dtype", [torch.float16, torch.bfloat16])
def test_resized_half_masks_round_in_their_own_dtype(device, mask_dtype):
    g = torch.Generator().manual_seed(11)
    mask = random_mask((1, 13, 11), device, g).to(mask_dtype)
    check(random_pixels((1, 40, 40, 3), device=device, generator=g), mask, 4, was=True)


# Each rounds to 0.5 in float32, which rounds half to even to 0; in float64 they stay on their side of 0.5.
FLOAT64_NEAR_HALF = [0.5 + 1e-9, 0.5 + 2**-25, 0.5 + 2**-45, 0.5 - 1e-9, 0.5 - 2**-26]


@pytest.mark.parametrize("value", FLOAT64_NEAR_HALF, ids=repr)
@pytest.mark.parametrize("mask_size", [(8, 8), (5, 7), (11, 13)], ids=str)
@pytest.mark.parametrize("grow", [0, 3])
def test_float64_masks_near_half_are_resized_and_rounded_in_float64(device, value, mask_size, grow):
    """As the seed, which resizes a float64 mask in float64: ``0.5 + 1e-9`` is set, ``0.5 - 1e-9`` is not."""
    pixels = torch.full((1, 8, 8, 3), 0.9, device=device)
    mask = torch.full((1, *mask_size), value, dtype=torch.float64, device=device)
    for was in (False, True):
        out = fused(pixels, mask, grow, was=was)
        ref_pixels, ref_noise, _ = expected(pixels, mask, grow, was=was)
        assert torch.equal(out.noise_mask, ref_noise) and torch.equal(out.pixels, ref_pixels)
        assert torch.equal(out.noise_mask, torch.full_like(out.noise_mask, float(value > 0.5)))


@settings(max_examples=15 if not ON_GPU else 60, deadline=None)
@given(
    height=st.integers(4, 40),
    width=st.integers(4, 40),
    mask_h=st.integers(1, 48),
    mask_w=st.integers(1, 48),
    value=st.integers(-6, 6),
    was=st.booleans(),
    offsets=st.lists(st.sampled_from([2**-25, 1e-9, 2**-33, 1e-12, 2**-45]), min_size=1, max_size=3),
    seed=st.integers(0, 2**31 - 1),
)
def test_random_float64_masks_near_half(height, width, mask_h, mask_w, value, was, offsets, seed):
    """float64 masks of 0, 1, soft values and values within 2**-25 of 0.5, any sizes: equal to the seed.

    A resize may differ from PyTorch's by a few float64 ulps, so only values within 1e-13 of 0.5 (none
    of the near-half values above) may round otherwise.
    """
    device = torch.device("cuda" if ON_GPU else "cpu")
    value = value if was else abs(value)
    g = torch.Generator().manual_seed(seed)
    near_half = torch.tensor([0.5 + o for o in offsets] + [0.5 - o for o in offsets], dtype=torch.float64)
    choices = torch.cat([near_half, torch.tensor([0.0, 1.0], dtype=torch.float64)])
    mask = choices[torch.randint(len(choices), (1, mask_h, mask_w), generator=g)]
    soft = torch.rand((1, mask_h, mask_w), generator=g) < 0.2
    mask = torch.where(soft, torch.rand((1, mask_h, mask_w), generator=g, dtype=torch.float64), mask)
    pixels = random_pixels((1, height, width, 3), device=device, generator=g)
    check(pixels, mask.to(device), value, was=was, ratio=1, near_tie=1e-13)


def test_channels_last_and_sliced_views(device):
    g = torch.Generator().manual_seed(5)
    planar = random_pixels((2, 4, 50, 61), device=device, generator=g)
    channels_last_view = planar.movedim(1, -1)  # an IMAGE whose channels are the slowest dim
    assert not channels_last_view.is_contiguous()
    mask = random_mask((2, 50, 61), device, g)
    check(channels_last_view, mask, 6)
    check(channels_last_view, mask, 6, vae_dtype=torch.bfloat16)
    sliced = random_pixels((3, 60, 70, 5), device=device, generator=g)[1:, 3:-4, 2::2, 1:]
    check(sliced, random_mask((1, 9, 9), device, g).transpose(1, 2), -2, was=True)
    check(sliced, random_mask((1, 16, 16), device, g)[:, ::2, ::2], 3, vae_dtype=torch.float16)


def test_fourth_channel_passes_through(device):
    pixels = random_pixels((1, 24, 24, 4), device=device)
    out = check(pixels, torch.ones(1, 24, 24, device=device), 0)
    assert torch.equal(out.pixels[..., 3], pixels[..., 3])
    assert (out.pixels[..., :3] == 0.5).all()


@pytest.mark.parametrize(("batch", "mask_batch"), [(3, 1), (2, 2), (1, 3)])
@pytest.mark.parametrize("vae_dtype", [None, torch.bfloat16])
def test_batches(device, batch, mask_batch, vae_dtype):
    g = torch.Generator().manual_seed(batch * 10 + mask_batch)
    pixels = random_pixels((batch, 26, 34, 3), device=device, generator=g)
    out = check(pixels, random_mask((mask_batch, 13, 17), device, g), 6, vae_dtype=vae_dtype)
    assert out.noise_mask.shape[0] == mask_batch
    assert out.pixels.shape[0] == max(batch, mask_batch)


def test_mask_layouts_and_devices_agree(device):
    g = torch.Generator().manual_seed(9)
    pixels = random_pixels((1, 32, 40, 3), device=device, generator=g)
    mask = random_mask((20, 30), "cpu", g)
    results = [fused(pixels, m, 6) for m in (mask, mask[None], mask[None, None], mask.to(device))]
    for out in results[1:]:
        assert torch.equal(out.pixels, results[0].pixels) and torch.equal(out.noise_mask, results[0].noise_mask)
    assert results[0].noise_mask.device == pixels.device


def test_exact_half_with_a_same_size_mask_rounds_to_even(device):
    mask = torch.full((1, 16, 16), 0.5, device=device)
    mask[:, :, 8:] = torch.nextafter(torch.tensor(0.5), torch.tensor(1.0))
    out = check(torch.full((1, 16, 16, 3), 0.25, device=device), mask, 3)
    assert out.noise_mask[0, 0, :, :3].sum() == 0 and out.noise_mask[0, 0, :, 7:].all()


def test_mask_policy_nan_counts_as_zero_and_values_are_clamped(device):
    g = torch.Generator().manual_seed(2)
    pixels = random_pixels((1, 24, 32, 3), device=device, generator=g)
    clean = random_mask((1, 24, 32), device, g)
    dirty = clean.clone()
    dirty[0, 0, :8] = float("nan")
    dirty[0, 5, :] = 2.0
    dirty[0, 7, :] = -1.0
    sanitized = torch.nan_to_num(dirty, nan=0.0).clamp(0, 1)
    for was in (False, True):
        out = fused(pixels, dirty, 4, was=was)
        ref_pixels, ref_noise, _ = expected(pixels, sanitized, 4, was=was)
        assert torch.equal(out.noise_mask, ref_noise) and torch.equal(out.pixels, ref_pixels)


def test_nan_pixels_stay_nan_as_in_the_seed(device):
    pixels = random_pixels((1, 16, 16, 3), device=device)
    pixels[0, 2, 3, 1] = float("nan")
    pixels[0, 9, 9, 0] = float("inf")
    mask = torch.zeros(1, 16, 16, device=device)
    mask[0, 8:, 8:] = 1.0
    out = check(pixels, mask, 2)
    assert out.pixels[0, 2, 3, 1].isnan() and out.pixels[0, 9, 9, 0].isnan()


@pytest.mark.parametrize("grow", [0, 1, 2, 5, 6, 31])
def test_grow_mask_alone(device, grow):
    mask = random_mask((2, 37, 29), device, torch.Generator().manual_seed(grow))
    with poisoned_allocations():
        out = ifd.grow_mask(mask, grow)
    expected_mask = reference.grow_mask(mask[:, None], grow)[:, 0, :37, :29].round()
    assert out.shape == (2, 37, 29) and torch.equal(out, expected_mask)


@pytest.mark.parametrize("offset", [-20, -3, -1, 0, 1, 4, 20])
def test_modify_mask_alone(device, offset):
    mask = random_mask((1, 31, 45), device, torch.Generator().manual_seed(offset + 50))
    mask[0, :10, :10] = 1.0
    with poisoned_allocations():
        out = ifd.modify_mask(mask[0], offset)
    assert out.shape == (1, 31, 45)
    assert torch.equal(out, reference.was_modify_mask(mask[:, None], offset)[:, 0].round())


@settings(max_examples=25 if not ON_GPU else 60, deadline=None)
@given(
    height=st.integers(8, 70),
    width=st.integers(8, 70),
    mask_h=st.integers(1, 90),
    mask_w=st.integers(1, 90),
    batches=st.sampled_from([(1, 1), (2, 1), (2, 2), (1, 2)]),
    value=st.integers(-20, 20),
    was=st.booleans(),
    ratio=st.sampled_from([1, 2, 8]),
    channels=st.sampled_from([3, 4]),
    vae_dtype=st.sampled_from([None, torch.bfloat16, torch.float32]),
    seed=st.integers(0, 2**31 - 1),
)
def test_random_combinations(height, width, mask_h, mask_w, batches, value, was, ratio, channels, vae_dtype, seed):
    check_random_case(height, width, mask_h, mask_w, batches, value, was, ratio, channels, vae_dtype, seed)


def check_random_case(height, width, mask_h, mask_w, batches, value, was, ratio, channels, vae_dtype, seed):
    """One drawn case against the reference (``value`` is the grow, made non-negative, unless ``was``)."""
    device = torch.device("cuda" if ON_GPU else "cpu")
    value = value if was else abs(value)
    g = torch.Generator().manual_seed(seed)
    pixels = random_pixels((batches[0], height, width, channels), device=device, generator=g)
    mask = random_mask((batches[1], mask_h, mask_w), device, g)
    check(pixels, mask, value, was=was, ratio=ratio, vae_dtype=vae_dtype)


# --- bad input -------------------------------------------------------------------------------------

BAD_INPUTS = [
    (dict(pixels=torch.rand(16, 16, 3)), ValueError, "pixels"),
    (dict(pixels=torch.rand(1, 16, 16, 2)), ValueError, "channels"),
    (dict(pixels=torch.randint(0, 255, (1, 16, 16, 3), dtype=torch.uint8)), TypeError, "pixels"),
    (dict(pixels=torch.rand(0, 16, 16, 3)), ValueError, "pixels"),
    (dict(pixels=[[0.0]]), TypeError, "pixels"),
    (dict(mask=torch.rand(3, 16, 16), pixels=torch.rand(2, 16, 16, 3)), ValueError, "mask batch"),
    (dict(mask=torch.rand(1, 2, 16, 16)), ValueError, "mask"),
    (dict(mask=torch.rand(1, 1, 1, 16, 16)), ValueError, "mask"),
    (dict(mask=torch.rand(1, 0, 16)), ValueError, "mask"),
    (dict(mask=torch.ones(1, 16, 16, dtype=torch.bool)), TypeError, "mask"),
    (dict(grow_mask_by=-1), ValueError, "grow_mask_by"),
    (dict(grow_mask_by=2.0), TypeError, "grow_mask_by"),
    (dict(grow_mask_by=True), TypeError, "grow_mask_by"),
    (dict(downscale_ratio=0), ValueError, "downscale_ratio"),
    (dict(downscale_ratio=32), ValueError, "downscale_ratio"),
    (dict(vae_dtype=torch.int8), TypeError, "vae_dtype"),
    (dict(vae_dtype=torch.float64), TypeError, "vae_dtype"),
]


@pytest.mark.parametrize(("change", "error", "names"), BAD_INPUTS, ids=[str(i) for i in range(len(BAD_INPUTS))])
def test_bad_input_names_the_argument(change, error, names):
    args = dict(pixels=torch.rand(1, 16, 16, 3), mask=torch.rand(1, 16, 16), grow_mask_by=6)
    args.update(change)
    with pytest.raises(error, match=names):
        ifd.prepare_inpaint(**args)


def test_bad_input_of_the_other_entry_points():
    with pytest.raises(TypeError, match="mask_offset"):
        ifd.prepare_inpaint_was(torch.rand(1, 16, 16, 3), torch.rand(1, 16, 16), 1.5)
    with pytest.raises(ValueError, match="grow_mask_by"):
        ifd.grow_mask(torch.rand(1, 16, 16), -2)
    with pytest.raises(ValueError, match="mask"):
        ifd.modify_mask(torch.rand(16), 2)


# --- torch.library: registered ops, fakes, compile -------------------------------------------------


def test_ops_are_registered_and_this_suite_tests_the_kernels(device):
    for name in ("prepare_inpaint", "prepare_inpaint_was", "grow_mask", "modify_mask"):
        assert hasattr(torch.ops.inpaint_fused, name)
    assert ifd.uses_triton(device), "without a GPU, tests must run the kernels through TRITON_INTERPRET=1"


@pytest.mark.parametrize("vae_dtype", [None, torch.bfloat16])
def test_opcheck(device, vae_dtype):
    g = torch.Generator().manual_seed(1)
    pixels = random_pixels((2, 19, 26, 3), device=device, generator=g)
    mask = random_mask((1, 11, 13), device, g)
    torch.library.opcheck(torch.ops.inpaint_fused.prepare_inpaint, (pixels, mask, 6, 8, vae_dtype))
    torch.library.opcheck(torch.ops.inpaint_fused.prepare_inpaint_was, (pixels, mask, -3, 8, vae_dtype))
    torch.library.opcheck(torch.ops.inpaint_fused.grow_mask, (mask, 4))
    torch.library.opcheck(torch.ops.inpaint_fused.modify_mask, (mask, -2))


def test_torch_compile_fullgraph(device):
    torch._dynamo.reset()
    g = torch.Generator().manual_seed(4)
    pixels = random_pixels((1, 24, 40, 3), device=device, generator=g)
    mask = random_mask((1, 24, 40), device, g)

    def preprocess(p, m):
        out = ifd.prepare_inpaint(p, m, 6, vae_dtype=torch.bfloat16)
        return out.pixels, out.noise_mask

    compiled = torch.compile(preprocess, fullgraph=True)
    for got, want in zip(compiled(pixels, mask), preprocess(pixels, mask), strict=True):
        assert torch.equal(got, want)


def test_imports_and_falls_back_without_triton():
    code = (
        "import importlib.abc, sys\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'triton': raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import torch, inpaint_fused as ifd\n"
        "from inpaint_fused import reference\n"
        "assert not ifd.HAS_TRITON and not ifd.uses_triton(torch.device('cpu'))\n"
        "p, m = torch.rand(1, 20, 20, 3), torch.rand(1, 20, 20)\n"
        "out = ifd.prepare_inpaint(p, m, 6)\n"
        "ref = reference.vae_encode_for_inpaint(p, m, 6)\n"
        "assert torch.equal(out.pixels, ref[0]) and torch.equal(out.noise_mask, ref[1])\n"
        "print('ok')\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "TRITON_INTERPRET"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


# --- sizes only a GPU gets through in test time ------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.parametrize(
    ("batch", "shape", "mask_shape", "value", "was"),
    [
        (1, (1023, 1021), (1023, 1021), 6, False),
        (1, (1024, 1024), (512, 512), 6, False),
        (1, (2048, 2048), (2048, 2048), 64, False),
        (4, (480, 832), (480, 832), 6, False),
        (1, (1024, 1024), (1024, 1024), -128, True),
        (1, (1024, 1024), (777, 1301), 128, True),
    ],
)
@pytest.mark.parametrize("vae_dtype", [None, torch.bfloat16])
def test_large_images_on_gpu(batch, shape, mask_shape, value, was, vae_dtype):
    g = torch.Generator().manual_seed(0)
    pixels = random_pixels((batch, *shape, 3), device="cuda", generator=g)
    check(pixels, random_mask((1, *mask_shape), "cuda", g), value, was=was, vae_dtype=vae_dtype)


@pytest.mark.parametrize(
    ("shape", "mask_size", "value", "was", "channels", "vae_dtype"),
    [
        ((37, 53), "same", 6, False, 3, torch.bfloat16),
        ((23, 97), (5, 7), 0, False, 4, None),
        ((64, 40), "same", -5, True, 3, torch.float16),
        ((40, 64), (90, 61), 3, True, 4, None),
    ],
    ids=str,
)
def test_one_row_fill_tiles(device, monkeypatch, shape, mask_size, value, was, channels, vae_dtype):
    """The GPU's image pass shape (one-row tiles) under the interpreter too."""
    from inpaint_fused.ops import prepare_inpaint as op_module

    config = op_module.INTERPRETER_CONFIG._replace(fill_block_h=1, fill_block_w=64)
    monkeypatch.setattr(op_module, "INTERPRETER_CONFIG", config)
    g = torch.Generator().manual_seed(stable_seed(shape, value, channels))
    pixels = random_pixels((2, *shape, channels), device=device, generator=g)
    mask_shape = shape if mask_size == "same" else mask_size
    check(pixels, random_mask((2, *mask_shape), device, g), value, was=was, vae_dtype=vae_dtype)


@pytest.mark.gpu
@pytest.mark.parametrize("was", [False, True])
def test_cuda_graph_capture_and_replay(was):
    """Both kernels are capturable in a CUDA graph: a replay on new inputs gives the eager result."""
    g = torch.Generator().manual_seed(3)
    pixels = random_pixels((2, 256, 320, 3), device="cuda", generator=g)
    mask = random_mask((2, 256, 320), "cuda", g)
    fn = ifd.prepare_inpaint_was if was else ifd.prepare_inpaint
    value = -9 if was else 6
    fn(pixels, mask, value, vae_dtype=torch.bfloat16)  # compile outside the capture
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = fn(pixels, mask, value, vae_dtype=torch.bfloat16)
    new_pixels = random_pixels((2, 256, 320, 3), device="cuda", generator=g)
    new_mask = random_mask((2, 256, 320), "cuda", g)
    pixels.copy_(new_pixels)
    mask.copy_(new_mask)
    graph.replay()
    torch.cuda.synchronize()
    eager = fn(new_pixels, new_mask, value, vae_dtype=torch.bfloat16)
    assert torch.equal(captured.pixels, eager.pixels)
    assert torch.equal(captured.noise_mask, eager.noise_mask)


def test_launch_plans_are_cached_per_layout(device):
    """The geometry of a launch is computed once per layout and setting; another stride is another plan."""
    from inpaint_fused.ops import prepare_inpaint as op_module

    g = torch.Generator().manual_seed(11)
    pixels = random_pixels((1, 24, 40, 3), device=device, generator=g)
    mask = random_mask((1, 24, 40), device, g)
    first = ifd.prepare_inpaint(pixels, mask, 6, vae_dtype=torch.bfloat16)
    hits = op_module._plan.cache_info().hits
    again = ifd.prepare_inpaint(pixels, mask, 6, vae_dtype=torch.bfloat16)
    assert op_module._plan.cache_info().hits == hits + 1
    assert torch.equal(first.pixels, again.pixels) and torch.equal(first.noise_mask, again.noise_mask)
    misses = op_module._plan.cache_info().misses
    strided = pixels.transpose(1, 2).contiguous().transpose(1, 2)  # same values, other strides
    check(strided, mask, 6, vae_dtype=torch.bfloat16)
    assert op_module._plan.cache_info().misses == misses + 1


# --- one launch for small calls ---------------------------------------------------------------------


@contextlib.contextmanager
def every_call_in_one_launch():
    """Every growing call whose window fits a tile takes the one-launch path (off by default under the
    interpreter); yields the op module."""
    from inpaint_fused.ops import prepare_inpaint as op_module

    saved = op_module.INTERPRETER_ONE_LAUNCH, op_module.GPU_ONE_LAUNCH
    op_module.INTERPRETER_ONE_LAUNCH = saved[0]._replace(max_pixels=1 << 40, max_win=64)
    op_module.GPU_ONE_LAUNCH = saved[1]._replace(max_pixels=1 << 40, max_win=64)
    try:
        yield op_module
    finally:
        op_module.INTERPRETER_ONE_LAUNCH, op_module.GPU_ONE_LAUNCH = saved


@pytest.fixture
def one_launch():
    with every_call_in_one_launch() as op_module:
        yield op_module


@pytest.mark.parametrize(
    ("shape", "mask_size", "value", "was"),
    [
        ((8, 8), "same", 2, False),
        ((37, 53), "same", 6, False),
        ((37, 53), (5, 7), 9, False),
        ((23, 97), (90, 61), 1, False),
        ((64, 40), "same", -9, True),
        ((23, 97), (5, 7), -1, True),
        ((37, 53), (90, 61), 6, True),
        ((8, 8), "same", -2, True),
    ],
    ids=str,
)
def test_one_launch_matches_reference(device, one_launch, shape, mask_size, value, was):
    g = torch.Generator().manual_seed(stable_seed(shape, mask_size, value, was))
    mask_shape = shape if mask_size == "same" else mask_size
    pixels = random_pixels((2, *shape, 3), device=device, generator=g)
    check(pixels, random_mask((1, *mask_shape), device, g), value, was=was, vae_dtype=torch.bfloat16)


@pytest.mark.parametrize(("value", "was"), [(6, False), (-5, True), (3, True)])
def test_one_launch_with_one_row_tiles(device, one_launch, monkeypatch, value, was):
    """The GPU's tile shape (one row, so a run walks row by row), the mask alone and a 4-channel channels-last image."""
    monkeypatch.setattr(one_launch, "INTERPRETER_ONE_LAUNCH", one_launch.INTERPRETER_ONE_LAUNCH._replace(block_h=1))
    g = torch.Generator().manual_seed(stable_seed("one row", value, was))
    mask = random_mask((2, 19, 43), device, g)
    with poisoned_allocations():
        grown = ifd.modify_mask(mask, value) if was else ifd.grow_mask(mask, value)
    if was:
        expected_mask = reference.was_modify_mask(mask[:, None], value)[:, 0].round()
    else:
        expected_mask = reference.grow_mask(mask[:, None], value)[:, 0, :19, :43].round()
    assert torch.equal(grown, expected_mask)
    pixels = random_pixels((2, 16, 24, 4), device=device, generator=g).contiguous(memory_format=torch.channels_last)
    check(pixels, random_mask((2, 16, 24), device, g), value, was=was)


def test_one_launch_is_taken_for_small_calls_only(device, monkeypatch):
    """The dispatch: a small call within the tile's window takes one launch (no scratch), a larger one two."""
    from inpaint_fused.ops import launch
    from inpaint_fused.ops import prepare_inpaint as op_module

    name = "GPU_ONE_LAUNCH" if device.type == "cuda" else "INTERPRETER_ONE_LAUNCH"
    monkeypatch.setattr(op_module, name, getattr(op_module, name)._replace(max_pixels=2 * 32 * 48, max_win=8))
    g = torch.Generator().manual_seed(5)
    mask = random_mask((1, 37, 53), device, g)
    scratches = []
    for batch, value in [(2, 6), (3, 6), (2, 9)]:
        pixels = random_pixels((batch, 37, 53, 3), device=device, generator=g)
        check(pixels, mask, value, vae_dtype=torch.bfloat16)
        plan = op_module.plan_for(pixels, mask, launch.core_morphology(value), 8, torch.bfloat16)
        scratches.append(plan.scratch_shape)
    assert scratches == [None, (1, 32, 48), (1, 32, 48)]


@settings(max_examples=10 if not ON_GPU else 60, deadline=None)
@given(
    height=st.integers(8, 48),
    width=st.integers(8, 48),
    mask_h=st.integers(1, 70),
    mask_w=st.integers(1, 70),
    batches=st.sampled_from([(1, 1), (2, 1), (2, 2), (1, 2)]),
    value=st.integers(-12, 12),
    was=st.booleans(),
    ratio=st.sampled_from([1, 8]),
    vae_dtype=st.sampled_from([None, torch.bfloat16]),
    seed=st.integers(0, 2**31 - 1),
)
def test_one_launch_random_combinations(height, width, mask_h, mask_w, batches, value, was, ratio, vae_dtype, seed):
    with every_call_in_one_launch():
        check_random_case(height, width, mask_h, mask_w, batches, value, was, ratio, 3, vae_dtype, seed)
