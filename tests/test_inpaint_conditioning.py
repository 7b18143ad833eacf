"""prepare_inpaint_conditioning and the InpaintModelConditioningFused glue against ComfyUI's node.

The stock node is rebuilt from reference.inpaint_model_conditioning_prepare (its code up to the two
encodes), the stand-in ComfyUI VAE of test_vae (a conv first stage behind ComfyUI's ``encode``) and
reference.conditioning_set_values.
"""

from __future__ import annotations

import pytest
import torch
from helpers import OPCHECK, ComfyStyleVAE, poisoned_allocations
from hypothesis import given, settings
from hypothesis import strategies as st

import inpaint_fused as ifd
from inpaint_fused import _backend, reference
from inpaint_fused.comfyui import masks as nodes

ON_GPU = torch.cuda.is_available()
DEVICE = torch.device("cuda" if ON_GPU else "cpu")


@pytest.fixture(params=["kernel", "torch"])
def path(request, monkeypatch):
    if request.param == "torch":
        monkeypatch.setattr(_backend, "uses_triton", lambda device: False)
    return request.param


def inputs(pixel_shape, mask_shape, device, seed):
    g = torch.Generator().manual_seed(seed)
    pixels = torch.rand(pixel_shape, generator=g, dtype=torch.float64).float().to(device)
    mask = (torch.rand(mask_shape, generator=g) < 0.4).float()
    soft = torch.rand(mask_shape, generator=g)
    mask = torch.where(torch.rand(mask_shape, generator=g) < 0.3, soft, mask)
    mask.view(-1)[::11] = 0.5  # ties round to even: 0
    return pixels, mask.to(device)


def check(pixels, mask, vae_dtype=None):
    with poisoned_allocations():
        out = ifd.prepare_inpaint_conditioning(pixels, mask, vae_dtype)
    filled, cond_mask = reference.inpaint_model_conditioning_prepare(pixels, mask)
    if vae_dtype is not None:
        filled = reference.vae_input(filled, vae_dtype)
    for got, want, name in ((out.pixels, filled, "pixels"), (out.mask, cond_mask, "mask")):
        assert got.shape == want.shape and got.dtype == want.dtype and got.device == want.device, name
        assert torch.equal(got, want), (name, (got != want).sum())
    return out


@pytest.mark.parametrize(
    "shapes",
    [((2, 37, 50, 3), (1, 20, 20)), ((2, 32, 48, 4), (2, 32, 48)), ((1, 45, 38, 3), (45, 38)),
     ((3, 19, 27, 3), (3, 1, 70, 9)), ((1, 8, 8, 3), (1, 1, 1))],
    ids=str,
)  # fmt: skip
@pytest.mark.parametrize("vae_dtype", [None, torch.bfloat16, torch.float32])
def test_matches_stock(device, path, shapes, vae_dtype):
    check(*inputs(*shapes, device, hash(shapes) % 2**31), vae_dtype)


def test_mask_and_pixels_on_different_devices_and_dtypes(device, path):
    """A CPU mask (from a CPU node) with pixels on the VAE's device: the mask is resized on the CPU, as
    the stock node does it, and fills there; the stock node itself would refuse the mix."""
    pixels, mask = inputs((2, 21, 30, 3), (1, 9, 9), device, 3)
    out = ifd.prepare_inpaint_conditioning(pixels, mask.cpu())
    filled, cond_mask = reference.inpaint_model_conditioning_prepare(pixels.cpu(), mask.cpu())
    assert out.mask.device.type == "cpu" and out.pixels.device == pixels.device
    assert torch.equal(out.mask, cond_mask) and torch.equal(out.pixels.cpu(), filled)
    check(pixels.half(), mask.half())
    check(pixels.double(), mask[0].t().double())


@settings(max_examples=15 if not ON_GPU else 80, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 2), st.integers(8, 30), st.integers(8, 30), st.sampled_from([3, 4])),
    mask_size=st.tuples(st.integers(1, 30), st.integers(1, 30)),
    mask_batch=st.sampled_from(["one", "same"]),
    vae_dtype=st.sampled_from([None, torch.bfloat16]),
    seed=st.integers(0, 2**16),
)
def test_fuzz_against_stock(shape, mask_size, mask_batch, vae_dtype, seed):
    batch = 1 if mask_batch == "one" else shape[0]
    check(*inputs(shape, (batch, *mask_size), DEVICE, seed), vae_dtype)


def stock_node(positive, negative, pixels, vae, mask, noise_mask=True):
    """``InpaintModelConditioning.encode`` of ComfyUI v0.3.64 with the reference's preprocessing."""
    filled, mask = reference.inpaint_model_conditioning_prepare(pixels, mask)
    concat_latent = vae.encode(filled)
    orig_latent = vae.encode(pixels)
    out_latent = {"samples": orig_latent}
    if noise_mask:
        out_latent["noise_mask"] = mask
    values = {"concat_latent_image": concat_latent, "concat_mask": mask}
    return (
        reference.conditioning_set_values(positive, values),
        reference.conditioning_set_values(negative, values),
        out_latent,
    )


def assert_same(got, want, where=""):
    assert type(got) is type(want), where
    if isinstance(want, torch.Tensor):
        assert got.shape == want.shape and got.dtype == want.dtype and got.device == want.device, where
        assert torch.equal(got, want), where
    elif isinstance(want, dict):
        assert got.keys() == want.keys(), where
        for key in want:
            assert_same(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want), where
        for i, (a, b) in enumerate(zip(got, want, strict=True)):
            assert_same(a, b, f"{where}[{i}]")
    else:
        assert got == want, where


@pytest.mark.parametrize("noise_mask", [True, False])
@pytest.mark.parametrize("vae_dtype", [torch.float32, torch.bfloat16])
def test_node_equals_stock_node(device, noise_mask, vae_dtype):
    pixels, mask = inputs((2, 37, 42, 3), (1, 30, 30), "cpu", 5)
    cond = torch.rand(1, 4, 8)
    positive = [[cond, {"pooled_output": torch.ones(1, 8), "strength": 0.5}]]
    negative = [[cond * 2, {}], [cond * 3, {"area": (8, 8, 0, 0)}]]
    fused = nodes.inpaint_model_conditioning(
        positive, negative, pixels, ComfyStyleVAE(8, vae_dtype, device), mask, noise_mask
    )
    stock = stock_node(positive, negative, pixels, ComfyStyleVAE(8, vae_dtype, device), mask, noise_mask)
    assert_same(fused, stock)
    assert ("noise_mask" in fused[2]) is noise_mask
    assert positive[0][1].keys() == {"pooled_output", "strength"}  # the inputs' dicts are copied, not changed
    assert fused[0][0][1]["pooled_output"] is positive[0][1]["pooled_output"]
    assert fused[2]["samples"].shape == (2, 4, 4, 5) and fused[0][0][1]["concat_mask"].shape == (1, 1, 32, 40)


def test_node_with_a_vae_of_ratio_16(device):
    pixels, mask = inputs((1, 53, 70, 3), (1, 53, 70), "cpu", 6)
    positive, negative = [[torch.zeros(1), {}]], [[torch.ones(1), {}]]
    fused = nodes.inpaint_model_conditioning(positive, negative, pixels, ComfyStyleVAE(16, device=device), mask)
    assert_same(fused, stock_node(positive, negative, pixels, ComfyStyleVAE(16, device=device), mask))


def test_bad_input_names_the_argument():
    pixels = torch.rand(3, 16, 16, 3)
    with pytest.raises(ValueError, match="mask batch 2 does not fit pixels batch 3"):
        ifd.prepare_inpaint_conditioning(pixels, torch.rand(2, 16, 16))
    with pytest.raises(ValueError, match=r"mask values must lie in \[0, 1\]"):
        ifd.prepare_inpaint_conditioning(pixels, torch.full((1, 16, 16), 1.5))
    with pytest.raises(ValueError, match="mask values"):
        ifd.prepare_inpaint_conditioning(pixels, torch.full((1, 16, 16), float("nan")))
    with pytest.raises(ValueError, match="pixels of 7x16"):
        ifd.prepare_inpaint_conditioning(torch.rand(1, 7, 16, 3), torch.rand(1, 16, 16))
    with pytest.raises(ValueError, match="3 channels"):
        ifd.prepare_inpaint_conditioning(torch.rand(1, 16, 16, 2), torch.rand(1, 16, 16))
    with pytest.raises(TypeError, match="mask"):
        ifd.prepare_inpaint_conditioning(pixels, torch.ones(1, 16, 16, dtype=torch.bool))
    with pytest.raises(TypeError, match="vae_dtype"):
        ifd.prepare_inpaint_conditioning(pixels, torch.rand(1, 16, 16), torch.int8)


def test_opcheck(device):
    pixels, mask = inputs((2, 19, 26, 3), (1, 11, 13), device, 8)
    op = torch.ops.inpaint_fused.inpaint_conditioning
    torch.library.opcheck(op, (pixels, mask, None), test_utils=OPCHECK)
    torch.library.opcheck(op, (pixels, mask, torch.bfloat16), test_utils=OPCHECK)


@pytest.mark.gpu
@pytest.mark.parametrize("vae_dtype", [torch.float32, torch.bfloat16])
def test_gpu_node_with_cpu_inputs_equals_stock(vae_dtype):
    """The ComfyUI situation: IMAGE and MASK on the CPU, the VAE on the GPU; fill on the GPU, same latents."""
    pixels, mask = inputs((4, 1021, 770, 3), (4, 300, 200), "cpu", 9)
    positive, negative = [[torch.zeros(1), {}]], [[torch.ones(1), {}]]
    fused = nodes.inpaint_model_conditioning(positive, negative, pixels, ComfyStyleVAE(8, vae_dtype, "cuda"), mask)
    assert_same(fused, stock_node(positive, negative, pixels, ComfyStyleVAE(8, vae_dtype, "cuda"), mask))
    check(pixels.cuda(), mask.cuda(), vae_dtype)
    same_size = inputs((4, 1021, 770, 3), (1, 1021, 770), "cpu", 10)[1]  # no resize: the mask is read as is
    check(pixels.cuda(), same_size.cuda(), vae_dtype)
    fused = nodes.inpaint_model_conditioning(positive, negative, pixels, ComfyStyleVAE(8, vae_dtype, "cuda"), same_size)
    assert_same(fused, stock_node(positive, negative, pixels, ComfyStyleVAE(8, vae_dtype, "cuda"), same_size))
