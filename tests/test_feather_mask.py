"""feather_mask against ComfyUI's FeatherMask (reference.feather_mask_node): bit for bit, both paths."""

from __future__ import annotations

import pytest
import torch
from helpers import OPCHECK, poisoned_allocations, soft_mask
from hypothesis import given, settings
from hypothesis import strategies as st

import inpaint_fused as ifd
from inpaint_fused import _backend, reference

ON_GPU = torch.cuda.is_available()
DEVICE = torch.device("cuda" if ON_GPU else "cpu")


@pytest.fixture(params=["kernel", "torch"])
def path(request, monkeypatch):
    """The Triton kernel (GPU, or the interpreter here) or the pure-torch path of the same op."""
    if request.param == "torch":
        monkeypatch.setattr(_backend, "uses_triton", lambda device: False)
    return request.param


def check(mask, *widths):
    with poisoned_allocations():
        out = ifd.feather_mask(mask, *widths)
    want = reference.feather_mask_node(mask, *widths)
    assert out.shape == want.shape and out.dtype == want.dtype and out.device == want.device
    assert torch.equal(out, want), (widths, (out != want).sum())
    return out


@pytest.mark.parametrize("shape", [(1, 1, 1), (2, 37, 53), (1, 8, 5), (3, 16, 70)], ids=str)
@pytest.mark.parametrize(
    "widths",
    [(0, 0, 0, 0), (1, 1, 1, 1), (3, 5, 7, 2), (16, 0, 16, 0), (0, 9, 0, 9), (100, 200, 300, 400)],
    ids=str,
)
def test_matches_stock(device, path, shape, widths):
    check(soft_mask(shape, device, hash((shape, widths)) % 2**31), *widths)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_dtypes(device, path, dtype):
    check(soft_mask((2, 21, 30), device, 3, dtype), 4, 6, 9, 5)


def test_quirks_of_the_right_and_bottom_ramps(device, path):
    """``-0`` is column 0: right=4 scales column 0 by 1/4, the last by 2/4, column -3 by 4/4."""
    out = check(torch.ones(1, 1, 6, device=device), 0, 0, 4, 0)
    assert out[0, 0].tolist() == [0.25, 1.0, 1.0, 1.0, 0.75, 0.5]
    out = check(torch.ones(1, 5, 1, device=device), 0, 0, 0, 4)
    assert out[0, :, 0].tolist() == [0.25, 1.0, 1.0, 0.75, 0.5]
    out = check(torch.ones(1, 1, 3, device=device), 0, 0, 5, 0)  # clamped to 3: 1/3, 3/3, 2/3
    assert torch.equal(out[0, 0], torch.tensor([1 / 3, 1.0, 2 / 3], device=device))


def test_ranks_and_views(device, path):
    mask = soft_mask((40, 30), device, 5)
    assert check(mask, 2, 3, 4, 5).shape == (1, 40, 30)
    check(mask.t(), 2, 3, 4, 5)  # transposed: strides, no copy in the kernel
    check(soft_mask((2, 1, 12, 17), device, 6), 3, 3, 3, 3)
    check(soft_mask((2, 30, 50), device, 7)[:, 3:20, 5:45:2], 6, 2, 1, 7)


@settings(max_examples=20 if not ON_GPU else 100, deadline=None)
@given(
    batch=st.integers(1, 3),
    h=st.integers(1, 20),
    w=st.integers(1, 20),
    widths=st.tuples(*[st.integers(0, 25)] * 4),
    seed=st.integers(0, 2**16),
)
def test_fuzz_against_stock(batch, h, w, widths, seed):
    mask = soft_mask((batch, h, w), DEVICE, seed) * 2 - 0.5  # values outside [0, 1] feather as well
    check(mask, *widths)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_backend, "uses_triton", lambda device: False)
        check(mask, *widths)


def test_bad_input_names_the_argument():
    with pytest.raises(TypeError, match="mask"):
        ifd.feather_mask(torch.ones(4, 4, dtype=torch.int32), 1, 1, 1, 1)
    with pytest.raises(ValueError, match="mask"):
        ifd.feather_mask(torch.ones(4), 1, 1, 1, 1)
    with pytest.raises(ValueError, match="mask"):
        ifd.feather_mask(torch.ones(0, 4, 4), 1, 1, 1, 1)
    with pytest.raises(ValueError, match="bottom"):
        ifd.feather_mask(torch.ones(4, 4), 1, 1, 1, -1)
    with pytest.raises(TypeError, match="left"):
        ifd.feather_mask(torch.ones(4, 4), 1.5, 1, 1, 1)


# Schema, autograd registration and fake tensor (the full opcheck adds ~20 s of AOT compiles per op on a
# CPU); torch.compile(fullgraph=True) of all four ops together is in test_composite_masked.py.
def test_opcheck(device):
    mask = soft_mask((2, 13, 19), device, 8)
    torch.library.opcheck(torch.ops.inpaint_fused.feather_mask, (mask, 3, 4, 5, 6), test_utils=OPCHECK)
    torch.library.opcheck(torch.ops.inpaint_fused.feather_mask, (mask.double(), 0, 13, 19, 0), test_utils=OPCHECK)


@pytest.mark.gpu
def test_gpu_kernel_equals_stock_on_the_gpu_and_on_the_cpu():
    mask = soft_mask((4, 1024, 1000), "cuda", 9)
    out = ifd.feather_mask(mask, 64, 100, 333, 1024)
    assert torch.equal(out, reference.feather_mask_node(mask, 64, 100, 333, 1024))
    assert torch.equal(out.cpu(), reference.feather_mask_node(mask.cpu(), 64, 100, 333, 1024))
