"""threshold_mask against ComfyUI's ThresholdMask (reference.threshold_mask_node): bit for bit, both paths."""

from __future__ import annotations

import pytest
import torch
from helpers import OPCHECK, poisoned_allocations, soft_mask
from hypothesis import given, settings
from hypothesis import strategies as st

import inpaint_fused as ifd
from inpaint_fused import _backend, reference
from inpaint_fused.comfyui import masks as nodes
from inpaint_fused.ops.threshold_mask import rounded_scalar

ON_GPU = torch.cuda.is_available()
DEVICE = torch.device("cuda" if ON_GPU else "cpu")


@pytest.fixture(params=["kernel", "torch"])
def path(request, monkeypatch):
    if request.param == "torch":
        monkeypatch.setattr(_backend, "uses_triton", lambda device: False)
    return request.param


def check(mask, value):
    with poisoned_allocations():
        out = ifd.threshold_mask(mask, value)
    want = reference.threshold_mask_node(mask, value)
    assert out.shape == want.shape and out.dtype == want.dtype == torch.float32 and out.device == want.device
    assert torch.equal(out, want), (value, (out != want).sum())
    return out


@pytest.mark.parametrize("shape", [(1, 1), (2, 37, 53), (3, 1, 9, 70)], ids=str)
@pytest.mark.parametrize("value", [0.0, 0.3, 0.5, 0.77, 1.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
def test_matches_stock(device, path, shape, value, dtype):
    mask = soft_mask(shape, device, hash((shape, value)) % 2**31, dtype)
    mask.view(-1)[::7] = value  # ties: equal to the threshold is not above it
    check(mask, value)


def test_value_is_compared_in_the_mask_dtype(device, path):
    """0.3 as float32 is above the double 0.3; PyTorch rounds the scalar to the tensor's dtype, so not above."""
    third = torch.tensor(0.3)
    mask = torch.stack([third, torch.nextafter(third, torch.tensor(1.0)), torch.nextafter(third, torch.tensor(0.0))])
    assert check(mask[None].to(device), 0.3).tolist() == [[0.0, 1.0, 0.0]]
    half = torch.tensor([[0.3, 0.3008]], dtype=torch.float16, device=device)  # half(0.3) = 0.30005 > 0.3
    assert check(half, 0.3).tolist() == [[0.0, 1.0]]


def test_views_and_special_values(device, path):
    mask = soft_mask((30, 40), device, 3)
    check(mask.t(), 0.5)
    check(mask[2:20:3, 5:], 0.25)
    check(torch.tensor([[float("nan"), -1.0, 2.0, float("inf")]], device=device), 0.5)


@settings(max_examples=20 if not ON_GPU else 100, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 3), st.integers(1, 20), st.integers(1, 20)),
    value=st.floats(0.0, 1.0),
    dtype=st.sampled_from([torch.float32, torch.float16, torch.bfloat16]),
    seed=st.integers(0, 2**16),
)
def test_fuzz_against_stock(shape, value, dtype, seed):
    check(soft_mask(shape, DEVICE, seed, dtype), value)


# Ties of each rounding: float32/half/bf16 halfway points, values that round up twice, overflow, tiny values.
EDGE_SCALARS = [0.0, -0.0, 0.3, 0.5, 1.0, 1 / 3, 1 + 2**-9, 1 + 2**-8 + 2**-30, 1 + 2**-11, 1 + 2**-11 + 2**-40,
                1 + 2**-24, 65504.0, 65520.0, 65519.99, 3.4028235e38, 3.4028236e38, 1e39, -1e39, 1e-45, 1e-40,
                float("inf"), -float("inf"), 0.7 + 2**-30]  # fmt: skip


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_rounded_scalar_is_pytorchs_cast(dtype):
    """The kernel's scalar, rounded without tensors, is what PyTorch's cast gives (double -> float32 -> dtype)."""
    for value in EDGE_SCALARS:
        want = float(torch.tensor(value, dtype=torch.float64).to(dtype).to(torch.float32))
        assert rounded_scalar(value, dtype) == want and str(rounded_scalar(value, dtype)) == str(want), value


@pytest.mark.parametrize("shape", [(1, 1), (37, 53), (2, 1, 9, 70), (3, 2, 5, 7)], ids=str)
@pytest.mark.parametrize("value", [0.0, 0.5, 0.77, 1.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
def test_node_is_the_stock_expression(shape, value, dtype):
    """ThresholdMaskFused runs the stock ``(mask > value).float()``: bit for bit, same shape, dtype and device."""
    mask = soft_mask(shape, "cpu", hash((shape, value)) % 2**31, dtype)
    mask.view(-1)[::5] = value
    mask.view(-1)[1::11] = 1.0
    mask.view(-1)[2::13] = 0.0
    out, want = nodes.threshold(mask, value), reference.threshold_mask_node(mask, value)
    assert out.shape == want.shape == mask.shape and out.dtype == want.dtype == torch.float32
    assert out.device == mask.device and torch.equal(out, want)
    if mask.numel() > 1:  # grey data on both sides of the threshold (nothing is above 1)
        assert bool(out.any()) == (value < 1) and not bool(out.all())
    assert torch.equal(nodes.threshold(mask.mT, value), reference.threshold_mask_node(mask.mT, value))


def test_bad_input_names_the_argument():
    with pytest.raises(TypeError, match="mask"):
        ifd.threshold_mask(torch.ones(4, 4, dtype=torch.uint8), 0.5)
    with pytest.raises(ValueError, match="mask"):
        ifd.threshold_mask(torch.ones(4), 0.5)
    with pytest.raises(ValueError, match="value"):
        ifd.threshold_mask(torch.ones(4, 4), 1.5)
    with pytest.raises(TypeError, match="value"):
        ifd.threshold_mask(torch.ones(4, 4), "0.5")


def test_opcheck(device):
    mask = soft_mask((2, 13, 19), device, 8)
    torch.library.opcheck(torch.ops.inpaint_fused.threshold_mask, (mask, 0.4), test_utils=OPCHECK)


@pytest.mark.gpu
def test_gpu_kernel_equals_stock_on_the_gpu():
    mask = soft_mask((16, 1024, 1024), "cuda", 9)
    assert torch.equal(ifd.threshold_mask(mask, 0.5), reference.threshold_mask_node(mask, 0.5))
