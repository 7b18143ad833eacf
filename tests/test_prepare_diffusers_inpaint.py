"""``torch.ops.inpaint_fused::prepare_diffusers_inpaint`` through ``prepare_masked_image``: the fused op
against the diffusers pipelines' own code (``inpaint_fused.reference_diffusers``), bit for bit.

Outputs are poisoned (``helpers.poisoned_allocations``) so that an element the kernels miss shows up.
The kernels run on the GPU, or on the CPU under Triton's interpreter (see conftest). Whole pipelines
against stock are in ``test_diffusers_pipelines.py``.
"""

import numpy as np
import pytest
import torch
from helpers import nan_equal, poisoned_allocations, stable_seed
from hypothesis import given, settings
from hypothesis import strategies as st

import inpaint_fused._backend as backend
from inpaint_fused import reference_diffusers as stock
from inpaint_fused.diffusers import prepare_masked_image


def _mask(batch, height, width, seed=0):
    """Random float mask with the values that decide thresholds: exactly 0.5, just below, NaN, < 0, > 1."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(batch, 1, height, width, generator=g)
    flat = mask.view(-1)
    flat[::7] = 0.5
    flat[3::11] = float(np.nextafter(np.float32(0.5), np.float32(0)))
    flat[5::13] = float("nan")
    flat[6::17] = -0.25
    flat[8::19] = 1.5
    return mask


def _image(batch, height, width, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, height, width, generator=g) * 2 - 1


def fused(image, mask, **kwargs):
    """``prepare_masked_image`` with every tensor it allocates poisoned first."""
    with poisoned_allocations():
        return prepare_masked_image(image, mask, **kwargs)


@pytest.mark.parametrize(
    "height, width, factor",
    [(64, 48, 8), (37, 53, 8), (1, 1, 1), (16, 16, 2), (33, 47, 4), (8, 72, 8), (45, 21, 16)],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_masked_image_equals_pipeline_code(device, height, width, factor, dtype):
    if factor > min(height, width):
        pytest.skip("latent would be empty")
    image, mask = _image(2, height, width).to(device), _mask(1, height, width).to(device)
    out = fused(image, mask, vae_scale_factor=factor, dtype=dtype)
    expected = stock.prepare_mask_and_masked_image(image, mask, 0, factor, dtype)
    assert torch.equal(out.masked_image, expected[0])
    assert nan_equal(out.mask, expected[1])
    assert out.masked_image.stride() == expected[0].stride()
    assert out.masked_image.shape == (2, 3, height, width)
    assert out.mask.shape == (1, 1, height // factor, width // factor)


@pytest.mark.parametrize("grow", [1, 2, 3, 6, 7, 64])
@pytest.mark.parametrize("height, width", [(64, 64), (37, 53)])
def test_grow_equals_grown_mask_through_pipeline_code(device, grow, height, width):
    image, mask = _image(1, height, width).to(device), _mask(2, height, width, seed=grow).to(device)
    mask = (mask > 0.97).to(torch.float32)  # sparse, so growth shows
    mask[0, 0, 0, 0] = float("nan")
    out = fused(image, mask, dtype=torch.float16, grow_mask_by=grow)
    grown = stock.grow_binarized(mask, grow) if grow > 1 else mask
    expected = stock.prepare_mask_and_masked_image(image, grown, 0, 8, torch.float16)
    assert torch.equal(out.masked_image, expected[0])
    assert nan_equal(out.mask, expected[1])
    if grow > 1:
        assert grown.sum() > stock.binarize(mask).nan_to_num(1.0).sum()


def test_grow_is_asymmetric_for_even_sizes(device):
    mask = torch.zeros(1, 1, 16, 16, device=device)
    mask[0, 0, 8, 8] = 1
    out = fused(torch.ones(1, 3, 16, 16, device=device), mask, vae_scale_factor=1, grow_mask_by=6)
    rows = out.mask[0, 0].sum(1).nonzero().flatten().tolist()
    assert rows == [6, 7, 8, 9, 10, 11]  # 2 up, 3 down: ComfyUI's grow_mask_by


@pytest.mark.parametrize("image_batch, mask_batch", [(1, 3), (3, 1), (2, 2)])
def test_batch_broadcast(device, image_batch, mask_batch):
    image, mask = _image(image_batch, 24, 40).to(device), _mask(mask_batch, 24, 40).to(device)
    out = fused(image, mask, dtype=torch.bfloat16)
    expected = stock.prepare_mask_and_masked_image(image, mask, 0, 8, torch.bfloat16)
    assert torch.equal(out.masked_image, expected[0])
    assert nan_equal(out.mask, expected[1])


def test_strided_inputs_and_mask_layouts(device):
    base = _image(1, 40, 48).to(device)
    channels_last = base.contiguous(memory_format=torch.channels_last)
    sliced = torch.stack([base, -base], dim=-1)[..., 0]  # last-dim stride 2
    mask = _mask(1, 40, 48).to(device)
    expected = stock.prepare_mask_and_masked_image(base, mask, 0, 8, torch.float32)
    for image in (channels_last, sliced):
        for m in (mask, mask[0], mask[0, 0], torch.stack([mask, 1 - mask], dim=-1)[..., 0]):
            out = fused(image, m)
            assert torch.equal(out.masked_image, expected[0])
            assert out.masked_image.stride() == (image * (m < 0.5)).stride()
            assert nan_equal(out.mask, expected[1])


def test_float64_inputs(device):
    image, mask = _image(1, 32, 24).double().to(device), _mask(1, 32, 24).double().to(device)
    mask.view(-1)[1] = 0.49999999999999994  # rounds to 0.5 in float32: must stay below the threshold
    for dtype in (torch.float16, torch.float64):
        out = fused(image, mask, dtype=dtype)
        expected = stock.prepare_mask_and_masked_image(image, mask, 0, 8, dtype)
        assert torch.equal(out.masked_image, expected[0])
        assert nan_equal(out.mask, expected[1])


def test_fallback_without_kernels_matches(device, monkeypatch):
    image, mask = _image(2, 24, 32).to(device), _mask(1, 24, 32).to(device)
    kernel = fused(image, mask, dtype=torch.float16, grow_mask_by=4)
    monkeypatch.setattr(backend, "uses_triton", lambda _device: False)
    fallback = fused(image, mask, dtype=torch.float16, grow_mask_by=4)
    assert torch.equal(kernel.masked_image, fallback.masked_image)
    assert torch.equal(kernel.mask, fallback.mask)
    assert fallback.masked_image.stride() == kernel.masked_image.stride()


@pytest.mark.parametrize("one_minus", [False, True])
def test_opcheck(device, one_minus):
    image, mask = _image(1, 16, 24).to(device), _mask(1, 16, 24).to(device)
    torch.library.opcheck(
        torch.ops.inpaint_fused.prepare_diffusers_inpaint, (image, mask, 3, 8, torch.float16, one_minus)
    )


@pytest.mark.parametrize("dynamic", [False, True])
def test_torch_compile_fullgraph(device, dynamic):
    torch._dynamo.reset()
    compiled = torch.compile(
        lambda i, m: prepare_masked_image(i, m, dtype=torch.float16, grow_mask_by=3), fullgraph=True, dynamic=dynamic
    )
    for height, width in ((16, 24), (24, 40)):
        image = _image(1, height, width).to(device).contiguous(memory_format=torch.channels_last)
        mask = _mask(1, height, width).to(device)
        out = compiled(image, mask)
        expected = stock.prepare_mask_and_masked_image(image, mask, 3, 8, torch.float16)
        assert torch.equal(out.masked_image, expected[0])
        assert out.masked_image.stride() == expected[0].stride()
        assert nan_equal(out.mask, expected[1])


@pytest.mark.parametrize("height, width, grow", [(64, 48, 0), (37, 53, 0), (40, 24, 5), (33, 47, 6)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_flux_fill_formula_equals_pipeline_code(device, height, width, grow, dtype):
    """``image * (1 - mask)`` at full size (Flux Fill): NaN in the mask propagates into the image."""
    image, mask = _image(2, height, width).to(device), _mask(1, height, width).to(device)
    out = fused(image, mask, vae_scale_factor=1, dtype=dtype, grow_mask_by=grow, formula="image * (1 - mask)")
    grown = stock.grow_binarized(mask, grow) if grow > 1 else mask
    expected = stock.prepare_mask_and_masked_image(image, grown, 0, 1, dtype, one_minus=True)
    assert nan_equal(out.masked_image, expected[0])
    assert nan_equal(out.mask, expected[1])
    assert out.masked_image.stride() == expected[0].stride()
    nans = out.masked_image.isnan().any(1)
    if grow > 1:
        assert not nans.any()  # growth yields exact 0/1
    else:
        assert torch.equal(nans, mask.isnan().expand(2, 1, height, width)[:, 0])
        assert nans.any()


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"image": torch.rand(1, 4, 8, 8)}, ValueError, "image must be"),
        ({"image": torch.rand(3, 8, 8)}, ValueError, "image must be"),
        ({"image": torch.zeros(1, 3, 8, 8, dtype=torch.uint8)}, TypeError, "image must be"),
        ({"image": [[0.0]]}, TypeError, "image must be a torch.Tensor"),
        ({"mask": torch.rand(1, 1, 8, 9)}, ValueError, "does not match"),
        ({"mask": torch.rand(1, 2, 8, 8)}, ValueError, "rank 4"),
        ({"mask": torch.rand(8)}, ValueError, "mask must be"),
        ({"mask": torch.zeros(1, 8, 8, dtype=torch.bool)}, TypeError, "mask must be"),
        ({"image": torch.rand(2, 3, 8, 8), "mask": torch.rand(3, 8, 8)}, ValueError, "does not broadcast"),
        ({"vae_scale_factor": 0}, ValueError, "vae_scale_factor"),
        ({"vae_scale_factor": 16}, ValueError, "smaller than vae_scale_factor"),
        ({"vae_scale_factor": 8.0}, TypeError, "vae_scale_factor"),
        ({"grow_mask_by": -1}, ValueError, "grow_mask_by"),
        ({"grow_mask_by": True}, TypeError, "grow_mask_by"),
        ({"dtype": torch.int8}, TypeError, "dtype"),
        ({"formula": "image * mask"}, ValueError, "formula"),
    ],
)
def test_bad_input_raises(kwargs, error, match):
    args = {"image": torch.rand(1, 3, 8, 8), "mask": torch.rand(1, 8, 8), **kwargs}
    image, mask = args.pop("image"), args.pop("mask")
    with pytest.raises(error, match=match):
        prepare_masked_image(image, mask, **args)


@pytest.mark.parametrize("formula", ["image * (mask < 0.5)", "image * (1 - mask)"])
@pytest.mark.parametrize(
    "height, width, grow", [(100, 48, 41), (90, 61, 64), (77, 40, 30), (160, 24, 53), (12, 150, 13), (20, 200, 9)]
)
def test_grow_windows_spanning_several_row_blocks(device, height, width, grow, formula):
    """Windows of several row blocks, runs of rows that start mid-image: each run sums its first window from
    the horizontal pass's per-block counts, then carries the running count down its rows. Short wide images
    split the horizontal pass into runs of columns that start mid-row (the last two cases here)."""
    image = _image(2, height, width, seed=stable_seed(height, width, grow)).to(device)
    g = torch.Generator().manual_seed(stable_seed(height, width, grow, "mask"))
    mask = torch.rand(1, 1, height, width, generator=g) * 0.49
    # About two set pixels per window area, so that many seams between runs see set pixels.
    mask[torch.rand(mask.shape, generator=g) < 2.0 / grow**2] = 1.0
    mask[0, 0, 0, width // 2] = 0.5
    mask[0, 0, height // 2, 0] = 1.0
    mask[0, 0, height - 3, width - 5] = float("nan")
    mask = mask.to(device)
    factor = 1 if formula == "image * (1 - mask)" else 8
    out = fused(image, mask, vae_scale_factor=factor, dtype=torch.float16, grow_mask_by=grow, formula=formula)
    grown = stock.grow_binarized(mask, grow)
    expected = stock.prepare_mask_and_masked_image(
        image, grown, 0, factor, torch.float16, one_minus=formula == "image * (1 - mask)"
    )
    assert torch.equal(out.masked_image, expected[0])
    assert nan_equal(out.mask, expected[1])
    assert 0 < int(grown.sum()) < grown.numel()  # neither nothing nor everything grown


ON_GPU = torch.cuda.is_available()


@settings(max_examples=15 if not ON_GPU else 60, deadline=None)
@given(
    height=st.integers(1, 72),
    width=st.integers(1, 72),
    factor=st.sampled_from([1, 2, 8]),
    batches=st.sampled_from([(1, 1), (2, 1), (1, 2), (2, 2)]),
    grow=st.sampled_from([0, 1, 2, 3, 6, 17, 40, 200]),
    formula=st.sampled_from(["image * (mask < 0.5)", "image * (1 - mask)"]),
    dtype=st.sampled_from([torch.float32, torch.float16, torch.bfloat16]),
    density=st.sampled_from([0.002, 0.03, 0.5]),
    seed=st.integers(0, 2**31 - 1),
)
def test_random_combinations(height, width, factor, batches, grow, formula, dtype, density, seed):
    """Sizes, batches, growth, formula and dtype at random: equal to the pipelines' code, NaN for NaN."""
    if factor > min(height, width):
        factor = 1
    device = torch.device("cuda" if ON_GPU else "cpu")
    image = _image(batches[0], height, width, seed=seed).to(device)
    mask = _mask(batches[1], height, width, seed=seed + 1)
    g = torch.Generator().manual_seed(seed + 2)
    mask = torch.where(mask.isnan() | (mask >= 0.5), (torch.rand(mask.shape, generator=g) < density).float(), mask)
    mask.view(-1)[seed % mask.numel()] = float("nan")
    mask = mask.to(device)
    one_minus = formula == "image * (1 - mask)"
    out = fused(image, mask, vae_scale_factor=factor, dtype=dtype, grow_mask_by=grow, formula=formula)
    grown = stock.grow_binarized(mask, grow) if grow > 1 else mask
    expected = stock.prepare_mask_and_masked_image(image, grown, 0, factor, dtype, one_minus=one_minus)
    assert nan_equal(out.masked_image, expected[0])
    assert nan_equal(out.mask, expected[1])
    assert out.masked_image.stride() == expected[0].stride()


@pytest.mark.gpu
@pytest.mark.parametrize("batch, mask_batch", [(1, 1), (4, 1), (2, 2)])
@pytest.mark.parametrize("height, width", [(1024, 1024), (1536, 1032), (77, 2048)])
@pytest.mark.parametrize("grow", [0, 2, 6, 65])
@pytest.mark.parametrize("formula", ["image * (mask < 0.5)", "image * (1 - mask)"])
def test_large_images_on_gpu(batch, mask_batch, height, width, grow, formula):
    """The GPU config: 8-row blocks, many runs of rows and columns per image, windows of several blocks."""
    image = _image(batch, height, width, seed=stable_seed(batch, height, width)).cuda()
    mask = _mask(mask_batch, height, width, seed=stable_seed(mask_batch, height, width, grow))
    g = torch.Generator().manual_seed(stable_seed(mask_batch, height, width, grow, "sparse"))
    mask = torch.where(mask.isnan() | (mask >= 0.5), (torch.rand(mask.shape, generator=g) < 0.0005).float(), mask)
    mask.view(-1)[:: mask.numel() // 7] = float("nan")  # a few NaN, which count as set
    mask = mask.cuda()
    factor = 1 if formula == "image * (1 - mask)" else 8
    one_minus = formula == "image * (1 - mask)"
    out = fused(image, mask, vae_scale_factor=factor, dtype=torch.bfloat16, grow_mask_by=grow, formula=formula)
    grown = stock.grow_binarized(mask, grow) if grow > 1 else mask
    expected = stock.prepare_mask_and_masked_image(image, grown, 0, factor, torch.bfloat16, one_minus=one_minus)
    assert nan_equal(out.masked_image, expected[0])
    assert nan_equal(out.mask, expected[1])
