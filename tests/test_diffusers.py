"""diffusers integration: the fused op against the pipelines' own code, and whole pipelines against stock.

Tiny random-weight components are built here (no downloads); prompt embeddings replace the text
encoders. The kernels run on the GPU, or on the CPU under Triton's interpreter (see conftest).
"""

import sys

import numpy as np
import PIL.Image
import pytest
import torch

pytest.importorskip("diffusers")

from diffusers import (  # noqa: E402
    AutoencoderKL,
    DDIMScheduler,
    FluxFillPipeline,
    FluxInpaintPipeline,
    StableDiffusionInpaintPipeline,
    StableDiffusionXLInpaintPipeline,
    UNet2DConditionModel,
)

import inpaint_fused._backend as backend  # noqa: E402
from inpaint_fused.diffusers import (  # noqa: E402
    FusedStableDiffusionInpaintPipeline,
    FusedStableDiffusionXLInpaintPipeline,
    prepare_masked_image,
)
from inpaint_fused import reference_diffusers as stock  # noqa: E402

SIZE = 64  # pixels; the tiny VAE downsamples by 8 like the real ones, so latents are 8x8


def _nan_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a.isnan(), b.isnan()) and torch.equal(
        a.nan_to_num(), b.nan_to_num()
    )


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


# ---------------------------------------------------------------------------------------------- op


@pytest.mark.parametrize(
    "height, width, factor",
    [(64, 48, 8), (37, 53, 8), (1, 1, 1), (16, 16, 2), (33, 47, 4), (8, 72, 8), (45, 21, 16)],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_masked_image_equals_pipeline_code(device, height, width, factor, dtype):
    if factor > min(height, width):
        pytest.skip("latent would be empty")
    image, mask = _image(2, height, width).to(device), _mask(1, height, width).to(device)
    out = prepare_masked_image(image, mask, vae_scale_factor=factor, dtype=dtype)
    expected = stock.prepare_mask_and_masked_image(image, mask, 0, factor, dtype)
    assert torch.equal(out.masked_image, expected[0])
    assert _nan_equal(out.mask, expected[1])
    assert out.masked_image.stride() == expected[0].stride()
    assert out.masked_image.shape == (2, 3, height, width)
    assert out.mask.shape == (1, 1, height // factor, width // factor)


@pytest.mark.parametrize("grow", [1, 2, 3, 6, 7, 64])
@pytest.mark.parametrize("height, width", [(64, 64), (37, 53)])
def test_grow_equals_grown_mask_through_pipeline_code(device, grow, height, width):
    image, mask = _image(1, height, width).to(device), _mask(2, height, width, seed=grow).to(device)
    mask = (mask > 0.97).to(torch.float32)  # sparse, so growth shows
    mask[0, 0, 0, 0] = float("nan")
    out = prepare_masked_image(image, mask, dtype=torch.float16, grow_mask_by=grow)
    grown = stock.grow_binarized(mask, grow) if grow > 1 else mask
    expected = stock.prepare_mask_and_masked_image(image, grown, 0, 8, torch.float16)
    assert torch.equal(out.masked_image, expected[0])
    assert _nan_equal(out.mask, expected[1])
    if grow > 1:
        assert grown.sum() > stock.binarize(mask).nan_to_num(1.0).sum()


def test_grow_is_asymmetric_for_even_sizes(device):
    mask = torch.zeros(1, 1, 16, 16, device=device)
    mask[0, 0, 8, 8] = 1
    out = prepare_masked_image(torch.ones(1, 3, 16, 16, device=device), mask, vae_scale_factor=1, grow_mask_by=6)
    rows = out.mask[0, 0].sum(1).nonzero().flatten().tolist()
    assert rows == [6, 7, 8, 9, 10, 11]  # 2 up, 3 down: ComfyUI's grow_mask_by


@pytest.mark.parametrize("image_batch, mask_batch", [(1, 3), (3, 1), (2, 2)])
def test_batch_broadcast(device, image_batch, mask_batch):
    image, mask = _image(image_batch, 24, 40).to(device), _mask(mask_batch, 24, 40).to(device)
    out = prepare_masked_image(image, mask, dtype=torch.bfloat16)
    expected = stock.prepare_mask_and_masked_image(image, mask, 0, 8, torch.bfloat16)
    assert torch.equal(out.masked_image, expected[0])
    assert _nan_equal(out.mask, expected[1])


def test_strided_inputs_and_mask_layouts(device):
    base = _image(1, 40, 48).to(device)
    channels_last = base.contiguous(memory_format=torch.channels_last)
    sliced = torch.stack([base, -base], dim=-1)[..., 0]  # last-dim stride 2
    mask = _mask(1, 40, 48).to(device)
    expected = stock.prepare_mask_and_masked_image(base, mask, 0, 8, torch.float32)
    for image in (channels_last, sliced):
        for m in (mask, mask[0], mask[0, 0], torch.stack([mask, 1 - mask], dim=-1)[..., 0]):
            out = prepare_masked_image(image, m)
            assert torch.equal(out.masked_image, expected[0])
            assert out.masked_image.stride() == (image * (m < 0.5)).stride()
            assert _nan_equal(out.mask, expected[1])


def test_float64_inputs(device):
    image, mask = _image(1, 32, 24).double().to(device), _mask(1, 32, 24).double().to(device)
    mask.view(-1)[1] = 0.49999999999999994  # rounds to 0.5 in float32: must stay below the threshold
    for dtype in (torch.float16, torch.float64):
        out = prepare_masked_image(image, mask, dtype=dtype)
        expected = stock.prepare_mask_and_masked_image(image, mask, 0, 8, dtype)
        assert torch.equal(out.masked_image, expected[0])
        assert _nan_equal(out.mask, expected[1])


def test_fallback_without_kernels_matches(device, monkeypatch):
    image, mask = _image(2, 24, 32).to(device), _mask(1, 24, 32).to(device)
    fused = prepare_masked_image(image, mask, dtype=torch.float16, grow_mask_by=4)
    monkeypatch.setattr(backend, "uses_triton", lambda _device: False)
    fallback = prepare_masked_image(image, mask, dtype=torch.float16, grow_mask_by=4)
    assert torch.equal(fused.masked_image, fallback.masked_image)
    assert torch.equal(fused.mask, fallback.mask)
    assert fallback.masked_image.stride() == fused.masked_image.stride()


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
        assert _nan_equal(out.mask, expected[1])


@pytest.mark.parametrize("height, width, grow", [(64, 48, 0), (37, 53, 0), (40, 24, 5), (33, 47, 6)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_flux_fill_formula_equals_pipeline_code(device, height, width, grow, dtype):
    """``image * (1 - mask)`` at full size (Flux Fill): NaN in the mask propagates into the image."""
    image, mask = _image(2, height, width).to(device), _mask(1, height, width).to(device)
    out = prepare_masked_image(
        image, mask, vae_scale_factor=1, dtype=dtype, grow_mask_by=grow, formula="image * (1 - mask)"
    )
    grown = stock.grow_binarized(mask, grow) if grow > 1 else mask
    expected = stock.prepare_mask_and_masked_image(image, grown, 0, 1, dtype, one_minus=True)
    assert _nan_equal(out.masked_image, expected[0])
    assert _nan_equal(out.mask, expected[1])
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


# ----------------------------------------------------------------------------------------- pipelines


def _vae(**config):
    torch.manual_seed(0)
    return AutoencoderKL(
        **config,
        block_out_channels=(8, 8, 8, 8),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=4,
        sample_size=SIZE,
    ).eval()


def _unet(in_channels, xl):
    torch.manual_seed(1)
    extra = (
        {
            "addition_embed_type": "text_time",
            "addition_time_embed_dim": 4,
            "projection_class_embeddings_input_dim": 6 * 4 + 16,
            "use_linear_projection": True,
        }
        if xl
        else {}
    )
    return UNet2DConditionModel(
        block_out_channels=(16, 32),
        layers_per_block=1,
        sample_size=SIZE // 8,
        in_channels=in_channels,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=16,
        attention_head_dim=(2, 4),
        norm_num_groups=8,
        **extra,
    ).eval()


def _stock_pipeline(xl, in_channels, device):
    scheduler = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    if xl:
        pipe = StableDiffusionXLInpaintPipeline(
            vae=_vae(), text_encoder=None, text_encoder_2=None, tokenizer=None, tokenizer_2=None,
            unet=_unet(in_channels, xl=True), scheduler=scheduler, add_watermarker=False,
        )
    else:
        pipe = StableDiffusionInpaintPipeline(
            vae=_vae(), text_encoder=None, tokenizer=None, unet=_unet(in_channels, xl=False), scheduler=scheduler,
            safety_checker=None, feature_extractor=None, requires_safety_checker=False,
        )
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def _prompt(xl, device, batch=1):
    g = torch.Generator().manual_seed(7)
    embeds = {
        "prompt_embeds": torch.randn(batch, 5, 16, generator=g),
        "negative_prompt_embeds": torch.randn(batch, 5, 16, generator=g),
    }
    if xl:
        embeds["pooled_prompt_embeds"] = torch.randn(batch, 16, generator=g)
        embeds["negative_pooled_prompt_embeds"] = torch.randn(batch, 16, generator=g)
    return {k: v.to(device) for k, v in embeds.items()}


def _pil_inputs(mask_mode, size=SIZE, seed=3):
    rng = np.random.default_rng(seed)
    image = PIL.Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    mask = np.zeros((size, size), dtype=np.uint8)
    mask[size // 4 : size // 2 + 5, size // 3 : size - 9] = 255
    mask[::5, ::3] = 128  # 128/255 >= 0.5: binarised to 1
    mask[1::5, ::3] = 127  # 127/255 < 0.5: binarised to 0
    mask = PIL.Image.fromarray(mask, mode="L")
    if mask_mode == "RGBA":
        mask = PIL.Image.merge("RGBA", [mask, mask, mask, PIL.Image.new("L", mask.size, 255)])
    elif mask_mode != "L":
        mask = mask.convert(mask_mode)
    return image, mask


class _Recorder:
    """Records every VAE encoder input, the fused steps run and, at the first step, the UNet's mask and
    masked-image latents."""

    def __init__(self, pipe, monkeypatch):
        import inpaint_fused.diffusers.pipelines as pipelines

        self.encoded, self.step0, self.fused_steps = [], {}, 0
        encode, fused_step = pipe.vae.encode, pipelines.prepare_masked_image

        def spy(x, *args, **kwargs):
            self.encoded.append(x.detach().clone())
            return encode(x, *args, **kwargs)

        def count(*args, **kwargs):
            self.fused_steps += 1
            return fused_step(*args, **kwargs)

        monkeypatch.setattr(pipe.vae, "encode", spy)
        monkeypatch.setattr(pipelines, "prepare_masked_image", count)

    def callback(self, pipe, step, timestep, tensors):
        if step == 0:
            self.step0 = {k: v.detach().clone() for k, v in tensors.items()}
        return tensors

    def reset(self):
        self.encoded, self.step0, self.fused_steps = [], {}, 0


def _run_both(stock_pipe, fused_cls, monkeypatch, fused_kwargs=None, stock_kwargs=None, **kwargs):
    """The same call through the stock pipeline and its fused from_pipe twin, each with a fresh seeded generator."""
    fused_pipe = fused_cls.from_pipe(stock_pipe)
    recorder = _Recorder(stock_pipe, monkeypatch)
    kwargs = {"output_type": "np", **kwargs}
    results = []
    for pipe, extra in ((stock_pipe, stock_kwargs or {}), (fused_pipe, fused_kwargs or {})):
        recorder.reset()
        output = pipe(
            num_inference_steps=2,
            eta=1.0,  # DDIM draws noise from the generator at every step: draw order matters
            generator=torch.Generator().manual_seed(42),
            callback_on_step_end=recorder.callback,
            callback_on_step_end_tensor_inputs=["mask", "masked_image_latents"],
            **{**kwargs, **extra},
        )
        results.append((output.images, recorder.encoded, recorder.step0, recorder.fused_steps))
    return results


def _assert_same(results, n_encodes, same_layout=True, fused_steps=1):
    """Same VAE inputs (values and, unless told otherwise, strides), same UNet conditioning, same images;
    the fused pipeline ran the fused step ``fused_steps`` times, the stock one never."""
    (stock_images, stock_encoded, stock_step0, stock_steps), (fused_images, fused_encoded, fused_step0, steps) = results
    assert (stock_steps, steps) == (0, fused_steps)
    assert len(stock_encoded) == len(fused_encoded) == n_encodes
    for a, b in zip(stock_encoded, fused_encoded, strict=True):
        assert torch.equal(a, b), "VAE input differs"
        if same_layout:
            assert a.stride() == b.stride(), "VAE input laid out differently: convolutions may round differently"
    assert torch.equal(stock_step0["mask"], fused_step0["mask"])
    if same_layout:
        assert torch.equal(stock_step0["masked_image_latents"], fused_step0["masked_image_latents"])
    else:
        torch.testing.assert_close(
            fused_step0["masked_image_latents"], stock_step0["masked_image_latents"], rtol=0, atol=1e-5
        )
    stock_images, fused_images = np.asarray(stock_images, dtype=np.float32), np.asarray(fused_images, dtype=np.float32)
    np.testing.assert_allclose(fused_images, stock_images, rtol=0, atol=1e-5)


@pytest.mark.parametrize("mask_mode", ["L", "RGB", "RGBA"])
def test_sd_inpaint_9ch_same_as_stock(device, monkeypatch, mask_mode):
    pipe = _stock_pipeline(xl=False, in_channels=9, device=device)
    image, mask = _pil_inputs(mask_mode)
    results = _run_both(
        pipe, FusedStableDiffusionInpaintPipeline, monkeypatch, image=image, mask_image=mask, **_prompt(False, device)
    )
    _assert_same(results, n_encodes=1)


def test_sd_inpaint_4ch_strength_numpy_tensor(device, monkeypatch):
    pipe = _stock_pipeline(xl=False, in_channels=4, device=device)
    image, mask = _pil_inputs("L", size=48)
    image = np.asarray(image, dtype=np.float32)[None] / 255  # (1, H, W, C) numpy, as diffusers reads it
    # A tensor mask; on the CPU with the image, as the stock pipeline needs (it does not move a mask)
    mask = torch.from_numpy(np.asarray(mask, dtype=np.float32) / 255)[None, None]
    results = _run_both(
        pipe, FusedStableDiffusionInpaintPipeline, monkeypatch, image=image, mask_image=mask, height=SIZE,
        width=SIZE, strength=0.75, **_prompt(False, device),
    )
    _assert_same(results, n_encodes=2)  # the init image, then the masked image: stock order


def test_sd_inpaint_padding_mask_crop_pil_output(device, monkeypatch):
    pipe = _stock_pipeline(xl=False, in_channels=9, device=device)
    image, mask = _pil_inputs("L", size=96)
    results = _run_both(
        pipe, FusedStableDiffusionInpaintPipeline, monkeypatch, image=image, mask_image=mask, height=SIZE,
        width=SIZE, padding_mask_crop=4, output_type="pil", **_prompt(False, device),
    )
    _assert_same(results, n_encodes=1)


def test_sd_inpaint_batch_and_images_per_prompt(device, monkeypatch):
    pipe = _stock_pipeline(xl=False, in_channels=9, device=device)
    (a, mask), (b, _) = _pil_inputs("L"), _pil_inputs("L", seed=9)
    results = _run_both(
        pipe, FusedStableDiffusionInpaintPipeline, monkeypatch, image=[a, b], mask_image=mask,
        num_images_per_prompt=2, **_prompt(False, device, batch=2),
    )
    _assert_same(results, n_encodes=1)
    assert results[1][2]["masked_image_latents"].shape[0] == 2 * 2 * 2  # batch x per prompt x CFG


@pytest.mark.parametrize("in_channels", [9, 4])
def test_sdxl_inpaint_same_as_stock(device, monkeypatch, in_channels):
    pipe = _stock_pipeline(xl=True, in_channels=in_channels, device=device)
    image, mask = _pil_inputs("RGBA")
    results = _run_both(
        pipe, FusedStableDiffusionXLInpaintPipeline, monkeypatch, image=image, mask_image=mask,
        **_prompt(True, device),
    )
    _assert_same(results, n_encodes=2)  # default strength 0.9999 < 1 also encodes the init image


def test_grow_equals_stock_with_grown_mask(device, monkeypatch):
    pipe = _stock_pipeline(xl=False, in_channels=9, device=device)
    image, mask = _pil_inputs("L")
    grown = stock.grow_binarized(pipe.mask_processor.preprocess(mask, height=SIZE, width=SIZE), 6)
    results = _run_both(
        pipe, FusedStableDiffusionInpaintPipeline, monkeypatch, image=image, mask_image=mask,
        fused_kwargs={"grow_mask_by": 6}, stock_kwargs={"mask_image": grown}, **_prompt(False, device),
    )
    _assert_same(results, n_encodes=1)


def test_pil_inputs_go_as_bytes_and_give_stock_tensors(device, monkeypatch):
    """PIL image and mask: stock PIL steps, then bytes to the device; the VAE gets the stock tensor (strides too)."""
    import inpaint_fused.diffusers.pipelines as pipelines

    uploads = []
    upload = pipelines._bytes_to_unit_floats
    monkeypatch.setattr(pipelines, "_bytes_to_unit_floats", lambda a, d: uploads.append(a.dtype) or upload(a, d))
    pipe = _stock_pipeline(xl=False, in_channels=9, device=device)
    image, mask = _pil_inputs("RGB", size=80)  # resized to 64 by PIL, as stock
    results = _run_both(
        pipe, FusedStableDiffusionInpaintPipeline, monkeypatch, image=image, mask_image=mask, height=SIZE,
        width=SIZE, **_prompt(False, device),
    )
    _assert_same(results, n_encodes=1)
    assert uploads == [np.uint8, np.uint8]  # the image, then the mask


@pytest.mark.parametrize("xl", [False, True])
def test_unresized_numpy_and_tensors_finish_on_device(device, monkeypatch, xl):
    """A float numpy image and a CPU tensor mask at the processed size: uploaded as given, same tensors as stock."""
    import inpaint_fused.diffusers.pipelines as pipelines

    uploaded = []
    upload = pipelines._BytesToDevice._upload_array

    def spy(self, *args):
        result = upload(self, *args)
        uploaded.append(result is not None)
        return result

    monkeypatch.setattr(pipelines._BytesToDevice, "_upload_array", spy)
    pipe = _stock_pipeline(xl=xl, in_channels=9, device=device)
    image, mask = _pil_inputs("L")
    image = np.asarray(image, dtype=np.float32)[None] / 255
    mask = torch.from_numpy(np.asarray(mask, dtype=np.float32) / 255)[None, None]
    cls = FusedStableDiffusionXLInpaintPipeline if xl else FusedStableDiffusionInpaintPipeline
    results = _run_both(pipe, cls, monkeypatch, image=image, mask_image=mask, height=SIZE, width=SIZE,
                        **_prompt(xl, device))
    _assert_same(results, n_encodes=2 if xl else 1)
    assert uploaded == [True, device.type != "cpu"]  # a CPU tensor is already on a CPU "device"


def test_tensors_on_the_device(device, monkeypatch):
    """Image and mask already on the execution device (a GPU in a CUDA run): they stay there, stock results."""
    pipe = _stock_pipeline(xl=False, in_channels=9, device=device)
    image, mask = _pil_inputs("RGBA")
    image = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)[None].to(device)
    mask = torch.from_numpy(np.asarray(mask.convert("L"), dtype=np.float32) / 255)[None, None].to(device)
    results = _run_both(pipe, FusedStableDiffusionInpaintPipeline, monkeypatch, image=image, mask_image=mask,
                        **_prompt(False, device))
    _assert_same(results, n_encodes=1)


def test_16_bit_mask_takes_the_stock_float_path(device, monkeypatch):
    pipe = _stock_pipeline(xl=False, in_channels=9, device=device)
    image, mask = _pil_inputs("L")
    mask16 = PIL.Image.fromarray(np.asarray(mask, dtype=np.int32) * 257).convert("I")  # 32-bit ints
    results = _run_both(
        pipe, FusedStableDiffusionInpaintPipeline, monkeypatch, image=image, mask_image=mask16,
        **_prompt(False, device),
    )
    _assert_same(results, n_encodes=1)


def test_resize_on_device_same_size_equals_stock(device, monkeypatch):
    pipe = _stock_pipeline(xl=False, in_channels=9, device=device)
    image, mask = _pil_inputs("RGB")
    results = _run_both(
        pipe, FusedStableDiffusionInpaintPipeline, monkeypatch, image=image, mask_image=mask,
        fused_kwargs={"resize_on_device": True}, **_prompt(False, device),
    )
    _assert_same(results, n_encodes=1)


def test_preprocess_on_device_is_the_old_name_of_resize_on_device(device, monkeypatch):
    pipe = _stock_pipeline(xl=False, in_channels=9, device=device)
    image, mask = _pil_inputs("L")
    with pytest.warns(FutureWarning, match="resize_on_device"):
        results = _run_both(
            pipe, FusedStableDiffusionInpaintPipeline, monkeypatch, image=image, mask_image=mask,
            fused_kwargs={"preprocess_on_device": True}, **_prompt(False, device),
        )
    _assert_same(results, n_encodes=1)


def test_resize_on_device_resizes_as_tensors(device, monkeypatch):
    """Opted in, a picture larger than asked is resized on the device by the stock tensor rule (nearest)."""
    pipe = _stock_pipeline(xl=False, in_channels=9, device=device)
    image, mask = _pil_inputs("L", size=128)
    as_tensors = {
        "image": torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)[None],
        "mask_image": torch.from_numpy(np.asarray(mask, dtype=np.float32) / 255)[None, None],
    }
    results = _run_both(
        pipe, FusedStableDiffusionInpaintPipeline, monkeypatch, image=image, mask_image=mask, height=SIZE,
        width=SIZE, fused_kwargs={"resize_on_device": True}, stock_kwargs=as_tensors, **_prompt(False, device),
    )
    # The same VAE input values and the same latent mask. The layouts differ (the resize keeps the
    # uploaded bytes' channels-last layout, and makes the test's tensors contiguous), so the VAE may
    # round differently from there on.
    (_, stock_encoded, stock_step0, _), (_, fused_encoded, fused_step0, steps) = results
    assert steps == 1 and len(stock_encoded) == len(fused_encoded) == 1
    assert torch.equal(stock_encoded[0], fused_encoded[0])
    assert torch.equal(stock_step0["mask"], fused_step0["mask"])


def test_explicit_masked_image_latents_pass_through(device, monkeypatch):
    pipe = _stock_pipeline(xl=False, in_channels=9, device=device)
    image, mask = _pil_inputs("L")
    latents = torch.randn(1, 4, SIZE // 8, SIZE // 8, generator=torch.Generator().manual_seed(5)).to(device)
    results = _run_both(
        pipe, FusedStableDiffusionInpaintPipeline, monkeypatch, image=image, mask_image=mask,
        masked_image_latents=latents, **_prompt(False, device),
    )
    _assert_same(results, n_encodes=0, fused_steps=0)
    fused = FusedStableDiffusionInpaintPipeline.from_pipe(pipe)
    with pytest.raises(ValueError, match="grow_mask_by"):
        fused(image=image, mask_image=mask, masked_image_latents=latents, grow_mask_by=3, **_prompt(False, device))
    with pytest.raises(ValueError, match="grow_mask_by"):
        fused(image=image, mask_image=mask, grow_mask_by=-2, **_prompt(False, device))


def test_missing_diffusers_gives_install_hint(monkeypatch):
    import inpaint_fused.diffusers as package

    monkeypatch.delitem(sys.modules, "inpaint_fused.diffusers.pipelines")
    monkeypatch.setitem(sys.modules, "diffusers", None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'inpaint-fused\[diffusers\]'"):
        package.FusedStableDiffusionInpaintPipeline  # noqa: B018


def test_device_upload_divides_like_numpy(device):
    """PIL bytes become [0, 1] floats on the device exactly as VaeImageProcessor's numpy division."""
    from inpaint_fused.diffusers.pipelines import _bytes_to_unit_floats

    values = np.arange(256, dtype=np.uint8).reshape(16, 16)
    expected = torch.from_numpy(values.astype(np.float32) / 255.0)
    got = _bytes_to_unit_floats(np.array(PIL.Image.fromarray(values, mode="L")), device)
    assert got.dtype == torch.float32 and got.device.type == device.type
    assert torch.equal(got.cpu(), expected)


# ---------------------------------------------------------------------------------------------- Flux


def _flux_pipeline(cls, device):
    """A tiny Flux inpaint or Fill pipeline: 4 latent channels, 8x VAE, one double and one single block."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel

    latent = 4
    packed = 4 * latent  # 2x2 patches
    # Fill feeds latents, masked-image latents and the mask folded into f*f = 64 channels, all packed.
    in_channels = packed + packed + 4 * 64 if cls is FluxFillPipeline else packed
    torch.manual_seed(2)
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=in_channels,
        out_channels=packed,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        pooled_projection_dim=32,
        axes_dims_rope=(4, 4, 8),
    ).eval()
    pipe = cls(
        scheduler=FlowMatchEulerDiscreteScheduler(), vae=_vae(shift_factor=0.0609, scaling_factor=1.5035),
        text_encoder=None, tokenizer=None, text_encoder_2=None, tokenizer_2=None, transformer=transformer,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def _flux_prompt(device, batch=1):
    g = torch.Generator().manual_seed(7)
    return {
        "prompt_embeds": torch.randn(batch, 5, 32, generator=g).to(device),
        "pooled_prompt_embeds": torch.randn(batch, 32, generator=g).to(device),
    }


def _run_both_flux(stock_pipe, fused_cls, monkeypatch, fused_kwargs=None, stock_kwargs=None, **kwargs):
    """As ``_run_both``, recording what ``prepare_mask_latents`` returns (Flux has no such callback tensors)."""
    fused_pipe = fused_cls.from_pipe(stock_pipe)
    recorder = _Recorder(stock_pipe, monkeypatch)
    kwargs = {"output_type": "np", "height": SIZE, "width": SIZE, "num_inference_steps": 2, **kwargs}
    results = []
    for pipe, extra in ((stock_pipe, stock_kwargs or {}), (fused_pipe, fused_kwargs or {})):
        recorder.reset()
        prepare = pipe.prepare_mask_latents

        def spy(*args, _prepare=prepare, **kw):
            mask, latents = _prepare(*args, **kw)
            recorder.step0 = {"mask": mask.detach().clone(), "masked_image_latents": latents.detach().clone()}
            return mask, latents

        monkeypatch.setattr(pipe, "prepare_mask_latents", spy)
        output = pipe(generator=torch.Generator().manual_seed(42), **{**kwargs, **extra})
        results.append((output.images, recorder.encoded, recorder.step0, recorder.fused_steps))
    return results


def _nan_images_equal(results):
    """For NaN masks: the same VAE inputs, NaN where the stock ones are."""
    (_, stock_encoded, _, _), (_, fused_encoded, _, steps) = results
    assert steps == 1
    assert len(stock_encoded) == len(fused_encoded)
    for a, b in zip(stock_encoded, fused_encoded, strict=True):
        assert _nan_equal(a, b)


@pytest.mark.parametrize("mask_mode", ["L", "RGBA"])
def test_flux_inpaint_same_as_stock(device, monkeypatch, mask_mode):
    from inpaint_fused.diffusers import FusedFluxInpaintPipeline

    pipe = _flux_pipeline(FluxInpaintPipeline, device)
    image, mask = _pil_inputs(mask_mode)
    results = _run_both_flux(pipe, FusedFluxInpaintPipeline, monkeypatch, image=image, mask_image=mask,
                             **_flux_prompt(device))
    _assert_same(results, n_encodes=2)  # default strength 0.6: the init image, then the masked image
    assert results[1][2]["mask"].shape == (1, (SIZE // 16) ** 2, 4 * 4)  # packed latent mask


def test_flux_inpaint_grow_and_images_per_prompt(device, monkeypatch):
    from inpaint_fused.diffusers import FusedFluxInpaintPipeline

    pipe = _flux_pipeline(FluxInpaintPipeline, device)
    image, mask = _pil_inputs("L")
    grown = stock.grow_binarized(pipe.mask_processor.preprocess(mask, height=SIZE, width=SIZE), 7)
    results = _run_both_flux(
        pipe, FusedFluxInpaintPipeline, monkeypatch, image=image, mask_image=mask, num_images_per_prompt=2,
        strength=1.0, fused_kwargs={"grow_mask_by": 7}, stock_kwargs={"mask_image": grown},
        **_flux_prompt(device),
    )
    _assert_same(results, n_encodes=2)
    assert results[1][2]["mask"].shape[0] == 2


@pytest.mark.parametrize("mask_mode", ["L", "RGB"])
def test_flux_fill_same_as_stock(device, monkeypatch, mask_mode):
    from inpaint_fused.diffusers import FusedFluxFillPipeline

    pipe = _flux_pipeline(FluxFillPipeline, device)
    image, mask = _pil_inputs(mask_mode)
    results = _run_both_flux(pipe, FusedFluxFillPipeline, monkeypatch, image=image, mask_image=mask,
                             **_flux_prompt(device))
    _assert_same(results, n_encodes=2)  # the init image (prepare_latents), then the masked image
    assert results[1][2]["mask"].shape == (1, (SIZE // 16) ** 2, 64 * 4)  # the full-size mask, folded and packed


def test_flux_fill_grow_batch_and_strength(device, monkeypatch):
    from inpaint_fused.diffusers import FusedFluxFillPipeline

    pipe = _flux_pipeline(FluxFillPipeline, device)
    (a, mask), (b, _) = _pil_inputs("L"), _pil_inputs("L", seed=9)
    grown = stock.grow_binarized(pipe.mask_processor.preprocess(mask, height=SIZE, width=SIZE), 6)
    results = _run_both_flux(
        pipe, FusedFluxFillPipeline, monkeypatch, image=[a, b], mask_image=mask, strength=0.8,
        fused_kwargs={"grow_mask_by": 6}, stock_kwargs={"mask_image": grown},
        **_flux_prompt(device, batch=2),
    )
    _assert_same(results, n_encodes=2)
    assert results[1][2]["masked_image_latents"].shape[0] == 2


def test_flux_fill_nan_mask_propagates_as_stock(device, monkeypatch):
    """A tensor mask with NaN: Flux Fill's ``image * (1 - mask)`` puts NaN into the VAE input; so does the fused op."""
    from inpaint_fused.diffusers import FusedFluxFillPipeline

    pipe = _flux_pipeline(FluxFillPipeline, device)
    image, _ = _pil_inputs("L")
    mask = torch.zeros(1, 1, SIZE, SIZE)
    mask[..., 10:30, 20:40] = 1
    mask[..., 3, 5] = float("nan")
    results = _run_both_flux(pipe, FusedFluxFillPipeline, monkeypatch, image=image, mask_image=mask,
                             **_flux_prompt(device))
    _nan_images_equal(results)
    assert results[1][1][1].isnan().any()


def test_flux_fill_explicit_latents_and_errors(device, monkeypatch):
    from inpaint_fused.diffusers import FusedFluxFillPipeline

    pipe = _flux_pipeline(FluxFillPipeline, device)
    fused = FusedFluxFillPipeline.from_pipe(pipe)
    image, mask = _pil_inputs("L")
    # The stock pipeline's own check still runs: an image together with masked_image_latents is refused.
    latents = torch.randn(1, (SIZE // 16) ** 2, 16 + 256).to(device)
    for p in (pipe, fused):
        with pytest.raises(ValueError, match="masked_image_latents"):
            p(image=image, mask_image=mask, masked_image_latents=latents, height=SIZE, width=SIZE,
              **_flux_prompt(device))
    with pytest.raises(ValueError, match="grow_mask_by"):
        fused(image=image, mask_image=mask, grow_mask_by=-1, height=SIZE, width=SIZE, **_flux_prompt(device))
