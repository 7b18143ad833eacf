"""The pure-torch path (``inpaint_fused.ops.torch_path``) against the original code, bit for bit.

The reference (``inpaint_fused.reference``, ``inpaint_fused.diffusers._reference``) stays the oracle:
every expected value here is the seed code's own output. The suite runs with Triton's interpreter
on, so these tests call the path's functions directly; one dispatch test switches the kernels off
and checks that the public API goes through this path. Windows wider than the seed code can
allocate (``10**9``) are compared with the smallest seed window that covers the whole image: both
then clip to the image.
"""

from __future__ import annotations

import pytest
import torch
from helpers import random_mask, random_pixels
from hypothesis import given, settings
from hypothesis import strategies as st

import inpaint_fused as ifd
from inpaint_fused import _backend, reference
from inpaint_fused import reference_diffusers as diffusers_reference
from inpaint_fused.ops import torch_path
from inpaint_fused.ops.prepare_inpaint import core_morphology, sanitize_mask, was_morphology

HUGE = 10**9


def _seed_value(value: int, was: bool, x: int, y: int) -> int:
    """A seed window equivalent to ``value`` on an ``x * y`` image: huge ones shrunk to just cover it."""
    reach = max(x, y)
    if was:
        return max(-reach, min(reach, value))
    if value <= 2 * reach + 2:
        return value
    return 2 * reach + 2 + value % 2  # the same parity, so the same asymmetry (then covering everything)


def seed(pixels, mask, value, was, ratio=8, vae_dtype=None):
    """What the seed code gives for the ops' inputs, under the ops' mask policy."""
    mask = sanitize_mask(mask)
    if pixels.shape[0] == 1 and mask.shape[0] > 1:
        pixels = pixels.expand(mask.shape[0], -1, -1, -1)
    x, y = pixels.shape[1] // ratio * ratio, pixels.shape[2] // ratio * ratio
    encode = reference.was_vae_encode_for_inpaint if was else reference.vae_encode_for_inpaint
    out, noise = encode(pixels, mask, _seed_value(value, was, x, y), ratio)
    if vae_dtype is not None:
        out = reference.vae_input(out, vae_dtype)
    return out, noise.to(torch.float32)


def run(pixels, mask, value, was, ratio=8, vae_dtype=None):
    morph = was_morphology(value) if was else core_morphology(value)
    return torch_path.prepare(pixels, sanitize_mask(mask), morph, ratio, vae_dtype)


def check(pixels, mask, value, was=False, ratio=8, vae_dtype=None):
    out, noise = run(pixels, mask, value, was, ratio, vae_dtype)
    want_out, want_noise = seed(pixels, mask, value, was, ratio, vae_dtype)
    assert noise.dtype == torch.float32 and noise.shape == want_noise.shape
    assert torch.equal(noise, want_noise), f"noise mask: {(noise != want_noise).sum().item()} pixels differ"
    assert out.dtype == want_out.dtype and out.shape == want_out.shape
    same = (out == want_out) | (out.isnan() & want_out.isnan())
    assert bool(same.all()), f"pixels: {(~same).sum().item()} values differ"
    return out, noise


def _pixels(shape, dtype=torch.float32, seed_=0):
    return random_pixels(shape, dtype, generator=torch.Generator().manual_seed(seed_))


def _mask(shape, dtype=torch.float32, seed_=1, density=0.4):
    g = torch.Generator().manual_seed(seed_)
    return random_mask(shape, generator=g, density=density).to(dtype)


GROWS = [0, 1, 2, 3, 6, 7, 64, HUGE, HUGE + 1]
OFFSETS = [-HUGE, -128, -64, -7, -2, -1, 0, 1, 2, 6, 64, 128, HUGE]
SHAPES = [
    ((1, 1), (1, 1), 1),
    ((8, 8), (8, 8), 8),
    ((37, 53), (37, 53), 8),
    ((37, 53), (20, 70), 8),
    ((23, 19), (61, 47), 4),
    ((41, 29), (5, 3), 1),
]


@pytest.mark.parametrize(("shape", "mask_shape", "ratio"), SHAPES, ids=str)
def test_core_every_grow(shape, mask_shape, ratio):
    pixels, mask = _pixels((1, *shape, 3)), _mask((1, *mask_shape), density=0.1)
    for grow in GROWS:
        check(pixels, mask, grow, ratio=ratio)


@pytest.mark.parametrize(("shape", "mask_shape", "ratio"), SHAPES, ids=str)
def test_was_every_offset(shape, mask_shape, ratio):
    pixels, mask = _pixels((1, *shape, 4)), _mask((1, *mask_shape), density=0.5)
    for offset in OFFSETS:
        check(pixels, mask, offset, was=True, ratio=ratio)


@pytest.mark.parametrize("pixel_dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("mask_dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_dtypes(pixel_dtype, mask_dtype):
    pixels = _pixels((2, 27, 34, 3), pixel_dtype) * 1.5 - 0.25  # values whose (p - 0.5) + 0.5 may move
    for mask_shape in ((27, 34), (13, 40)):
        mask = _mask((1, *mask_shape), mask_dtype)
        for value, was in ((0, False), (6, False), (-3, True), (5, True)):
            check(pixels, mask, value, was=was)


@pytest.mark.parametrize("vae_dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("pixel_dtype", [torch.bfloat16, torch.float32, torch.float64])
def test_vae_input(vae_dtype, pixel_dtype):
    pixels, mask = _pixels((2, 26, 35, 4), pixel_dtype), _mask((2, 26, 35))
    for value, was in ((7, False), (-4, True)):
        out, _ = check(pixels, mask, value, was=was, vae_dtype=vae_dtype)
        assert out.shape == (2, 3, 24, 32) and out.is_contiguous()


def test_channels_last_and_sliced_views():
    base = _pixels((2, 4, 40, 50)).permute(0, 2, 3, 1)  # channels-last storage of an IMAGE
    big_mask = _mask((3, 60, 70))
    pixels = base[:, 3:38, 1:47]
    for mask in (big_mask[1:2, 5:40, 2:48], big_mask[:, ::2, ::2][:1], big_mask[:1, 10:50, 3:60].transpose(1, 2)):
        assert not mask.is_contiguous() and not pixels.is_contiguous()
        for value, was in ((6, False), (-5, True), (0, False)):
            check(pixels, mask, value, was=was)
            check(pixels, mask, value, was=was, vae_dtype=torch.bfloat16)


@pytest.mark.parametrize(("n_pix", "n_mask"), [(3, 1), (2, 2), (1, 3)])
def test_batches(n_pix, n_mask):
    pixels, mask = _pixels((n_pix, 21, 30, 3)), _mask((n_mask, 17, 33))
    for value, was in ((6, False), (-2, True)):
        out, noise = check(pixels, mask, value, was=was)
        assert out.shape[0] == max(n_pix, n_mask) and noise.shape[0] == n_mask
        check(pixels, mask, value, was=was, vae_dtype=torch.float16)


def test_mask_policy_and_non_finite_pixels():
    pixels = _pixels((1, 16, 24, 3))
    pixels[0, ::3, ::5] = float("nan")
    pixels[0, 1::4, 2::7, 1] = float("inf")
    mask = _mask((1, 16, 24)) * 3 - 1  # values below 0 and above 1
    mask[0, ::5, ::3] = float("nan")
    for value, was in ((0, False), (6, False), (-2, True), (3, True)):
        out, _ = check(pixels, mask, value, was=was)
        assert out.isnan().any()


def test_exact_halves_round_to_even():
    mask = torch.full((1, 16, 16), 0.5, dtype=torch.float64)
    mask[0, 4:8, 4:8] = 0.5 + 2**-40
    _, noise = check(_pixels((1, 16, 16, 3)), mask, 0)
    assert int(noise.sum()) == 16


@pytest.mark.parametrize("was", [False, True])
def test_modify_alone(was):
    mask = _mask((2, 37, 29), density=0.3)
    for value in OFFSETS if was else GROWS:
        morph = was_morphology(value) if was else core_morphology(value)
        got = torch_path.modify(sanitize_mask(mask), morph)
        seed_value = _seed_value(value, was, 37, 29)
        flat = sanitize_mask(mask).unsqueeze(1)
        want = (reference.was_modify_mask if was else reference.grow_mask)(flat, seed_value)
        assert torch.equal(got, want[:, :, :37, :29].round()), value


def test_box_any_is_the_window_count():
    bits = torch.zeros(1, 9, 11, dtype=torch.bool)
    bits[0, 4, 5] = True
    grown = torch_path.box_any(bits, 6, 3)  # ComfyUI g=6: 2 rows/columns up/left, 3 down/right
    rows, cols = grown[0].nonzero().unbind(1)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (2, 7, 3, 8)
    assert torch.equal(torch_path.box_any(bits, HUGE, HUGE // 2), torch.ones_like(bits))


def _diffusers_inputs(n_img, n_mask, height, width, dtype=torch.float32, seed_=0):
    g = torch.Generator().manual_seed(seed_)
    image = (torch.rand(n_img, 3, height, width, generator=g) * 2 - 1).to(dtype)
    mask = torch.rand(n_mask, 1, height, width, generator=g)
    flat = mask.view(-1)
    flat[::7] = 0.5
    flat[5::13] = float("nan")
    flat[6::17] = -0.25
    flat[8::19] = 1.5
    return image, mask.to(dtype)


@pytest.mark.parametrize("one_minus", [False, True])
@pytest.mark.parametrize(
    ("dtype", "out_dtype"),
    [(torch.float32, torch.float16), (torch.float64, torch.bfloat16), (torch.bfloat16, torch.float32)],
)
def test_diffusers(one_minus, dtype, out_dtype):
    for n_img, n_mask in ((2, 1), (2, 2), (1, 3)):
        image, mask = _diffusers_inputs(n_img, n_mask, 40, 56, dtype)
        image[0, 1, 3:9, 5] = float("inf")
        for grow in (0, 1, 2, 7, HUGE):
            got = torch_path.prepare_diffusers(image, mask, grow, 8, out_dtype, one_minus)
            seed_grow = min(grow, 2 * 56 + 2)
            want = diffusers_reference.prepare_mask_and_masked_image(image, mask, seed_grow, 8, out_dtype, one_minus)
            for a, b in zip(got, want, strict=True):
                assert a.dtype == b.dtype and a.shape == b.shape
                assert torch.equal(a.isnan(), b.isnan()) and torch.equal(a.nan_to_num(), b.nan_to_num()), grow


@settings(max_examples=40, deadline=None)
@given(
    height=st.integers(1, 48),
    width=st.integers(1, 48),
    mask_h=st.integers(1, 60),
    mask_w=st.integers(1, 60),
    batches=st.sampled_from([(1, 1), (2, 1), (2, 2), (1, 2)]),
    value=st.one_of(st.integers(-40, 40), st.sampled_from([-HUGE, HUGE, HUGE + 1])),
    was=st.booleans(),
    ratio=st.sampled_from([1, 2, 3, 8]),
    channels=st.sampled_from([3, 4]),
    dtypes=st.sampled_from(
        [
            (torch.float32, torch.float32),
            (torch.float16, torch.float64),
            (torch.float64, torch.bfloat16),
            (torch.bfloat16, torch.float16),
        ]
    ),
    vae_dtype=st.sampled_from([None, torch.bfloat16, torch.float32]),
    density=st.sampled_from([0.02, 0.3, 0.9]),
    seed_=st.integers(0, 2**31 - 1),
)
def test_random_combinations(
    height, width, mask_h, mask_w, batches, value, was, ratio, channels, dtypes, vae_dtype, density, seed_
):
    ratio = min(ratio, height, width)
    value = value if was else abs(value)
    pixels = _pixels((batches[0], height, width, channels), dtypes[0], seed_)
    check(pixels, _mask((batches[1], mask_h, mask_w), dtypes[1], seed_ + 1, density), value, was, ratio, vae_dtype)


def test_public_api_goes_through_the_torch_path(monkeypatch):
    calls = []

    def spy(name):
        real = getattr(torch_path, name)
        return lambda *args: calls.append(name) or real(*args)

    for name in ("prepare", "modify", "prepare_diffusers"):
        monkeypatch.setattr(torch_path, name, spy(name))
    monkeypatch.setattr(_backend, "uses_triton", lambda device: False)

    pixels, mask = _pixels((2, 37, 45, 3)), _mask((1, 30, 50))
    mask[0, 3, 4] = float("nan")
    for value, was in ((6, False), (64, False), (-5, True)):
        fn = ifd.prepare_inpaint_was if was else ifd.prepare_inpaint
        out = fn(pixels, mask, value, vae_dtype=torch.float16)
        want = seed(pixels, mask, value, was, vae_dtype=torch.float16)
        assert torch.equal(out.pixels, want[0]) and torch.equal(out.noise_mask, want[1])
    grown = ifd.grow_mask(mask, HUGE)
    assert torch.equal(grown, torch.ones(1, 30, 50))
    eroded = ifd.modify_mask(mask, -3)
    flat = sanitize_mask(mask).unsqueeze(1)
    assert torch.equal(eroded, reference.was_modify_mask(flat, -3)[:, 0].round())

    image, dmask = _diffusers_inputs(2, 1, 32, 40)
    got = torch.ops.inpaint_fused.prepare_diffusers_inpaint(image, dmask, 6, 8, torch.float16)
    want = diffusers_reference.prepare_mask_and_masked_image(image, dmask, 6, 8, torch.float16)
    assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))
    assert calls == ["prepare"] * 3 + ["modify"] * 2 + ["prepare_diffusers"]


@pytest.mark.gpu
@pytest.mark.parametrize("pixel_dtype", [torch.float32, torch.bfloat16])
def test_same_ops_on_cuda_tensors(pixel_dtype):
    """Only ordinary torch ops: the path runs on CUDA tensors too, equal to the seed code there."""
    pixels = _pixels((2, 37, 53, 4), pixel_dtype).cuda()
    for mask_shape in ((37, 53), (20, 70)):
        mask = _mask((1, *mask_shape)).cuda()
        for value, was in ((0, False), (6, False), (7, False), (64, False), (-5, True), (6, True)):
            for vae_dtype in (None, torch.bfloat16):
                out, noise = check(pixels, mask, value, was=was, vae_dtype=vae_dtype)
                assert out.is_cuda and noise.is_cuda
    image, dmask = _diffusers_inputs(2, 1, 32, 40)
    got = torch_path.prepare_diffusers(image.cuda(), dmask.cuda(), 6, 8, torch.float16)
    want = diffusers_reference.prepare_mask_and_masked_image(image.cuda(), dmask.cuda(), 6, 8, torch.float16)
    assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))
