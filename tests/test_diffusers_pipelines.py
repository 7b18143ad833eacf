"""diffusers integration: whole fused pipelines (SD, SDXL, Flux inpaint, Flux Fill) against stock.

Tiny random-weight components are built here (no downloads); prompt embeddings replace the text
encoders. The kernels run on the GPU, or on the CPU under Triton's interpreter (see conftest). The op
alone against the pipelines' code is in ``test_prepare_diffusers_inpaint.py``.
"""

import sys

import numpy as np
import PIL.Image
import pytest
import torch
from helpers import nan_equal

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

from inpaint_fused import reference_diffusers as stock  # noqa: E402
from inpaint_fused.diffusers import (  # noqa: E402
    FusedStableDiffusionInpaintPipeline,
    FusedStableDiffusionXLInpaintPipeline,
)

SIZE = 64  # pixels; the tiny VAE downsamples by 8 like the real ones, so latents are 8x8


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
            vae=_vae(),
            text_encoder=None,
            text_encoder_2=None,
            tokenizer=None,
            tokenizer_2=None,
            unet=_unet(in_channels, xl=True),
            scheduler=scheduler,
            add_watermarker=False,
        )
    else:
        pipe = StableDiffusionInpaintPipeline(
            vae=_vae(),
            text_encoder=None,
            tokenizer=None,
            unet=_unet(in_channels, xl=False),
            scheduler=scheduler,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
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
        pipe,
        FusedStableDiffusionInpaintPipeline,
        monkeypatch,
        image=image,
        mask_image=mask,
        height=SIZE,
        width=SIZE,
        strength=0.75,
        **_prompt(False, device),
    )
    _assert_same(results, n_encodes=2)  # the init image, then the masked image: stock order


def test_sd_inpaint_padding_mask_crop_pil_output(device, monkeypatch):
    pipe = _stock_pipeline(xl=False, in_channels=9, device=device)
    image, mask = _pil_inputs("L", size=96)
    results = _run_both(
        pipe,
        FusedStableDiffusionInpaintPipeline,
        monkeypatch,
        image=image,
        mask_image=mask,
        height=SIZE,
        width=SIZE,
        padding_mask_crop=4,
        output_type="pil",
        **_prompt(False, device),
    )
    _assert_same(results, n_encodes=1)


def test_sd_inpaint_batch_and_images_per_prompt(device, monkeypatch):
    pipe = _stock_pipeline(xl=False, in_channels=9, device=device)
    (a, mask), (b, _) = _pil_inputs("L"), _pil_inputs("L", seed=9)
    results = _run_both(
        pipe,
        FusedStableDiffusionInpaintPipeline,
        monkeypatch,
        image=[a, b],
        mask_image=mask,
        num_images_per_prompt=2,
        **_prompt(False, device, batch=2),
    )
    _assert_same(results, n_encodes=1)
    assert results[1][2]["masked_image_latents"].shape[0] == 2 * 2 * 2  # batch x per prompt x CFG


@pytest.mark.parametrize("in_channels", [9, 4])
def test_sdxl_inpaint_same_as_stock(device, monkeypatch, in_channels):
    pipe = _stock_pipeline(xl=True, in_channels=in_channels, device=device)
    image, mask = _pil_inputs("RGBA")
    results = _run_both(
        pipe,
        FusedStableDiffusionXLInpaintPipeline,
        monkeypatch,
        image=image,
        mask_image=mask,
        **_prompt(True, device),
    )
    _assert_same(results, n_encodes=2)  # default strength 0.9999 < 1 also encodes the init image


def test_grow_equals_stock_with_grown_mask(device, monkeypatch):
    pipe = _stock_pipeline(xl=False, in_channels=9, device=device)
    image, mask = _pil_inputs("L")
    grown = stock.grow_binarized(pipe.mask_processor.preprocess(mask, height=SIZE, width=SIZE), 6)
    results = _run_both(
        pipe,
        FusedStableDiffusionInpaintPipeline,
        monkeypatch,
        image=image,
        mask_image=mask,
        fused_kwargs={"grow_mask_by": 6},
        stock_kwargs={"mask_image": grown},
        **_prompt(False, device),
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
        pipe,
        FusedStableDiffusionInpaintPipeline,
        monkeypatch,
        image=image,
        mask_image=mask,
        height=SIZE,
        width=SIZE,
        **_prompt(False, device),
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
    results = _run_both(
        pipe, cls, monkeypatch, image=image, mask_image=mask, height=SIZE, width=SIZE, **_prompt(xl, device)
    )
    _assert_same(results, n_encodes=2 if xl else 1)
    assert uploaded == [True, device.type != "cpu"]  # a CPU tensor is already on a CPU "device"


def test_tensors_on_the_device(device, monkeypatch):
    """Image and mask already on the execution device (a GPU in a CUDA run): they stay there, stock results."""
    pipe = _stock_pipeline(xl=False, in_channels=9, device=device)
    image, mask = _pil_inputs("RGBA")
    image = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)[None].to(device)
    mask = torch.from_numpy(np.asarray(mask.convert("L"), dtype=np.float32) / 255)[None, None].to(device)
    results = _run_both(
        pipe, FusedStableDiffusionInpaintPipeline, monkeypatch, image=image, mask_image=mask, **_prompt(False, device)
    )
    _assert_same(results, n_encodes=1)


def test_16_bit_mask_takes_the_stock_float_path(device, monkeypatch):
    pipe = _stock_pipeline(xl=False, in_channels=9, device=device)
    image, mask = _pil_inputs("L")
    mask16 = PIL.Image.fromarray(np.asarray(mask, dtype=np.int32) * 257).convert("I")  # 32-bit ints
    results = _run_both(
        pipe,
        FusedStableDiffusionInpaintPipeline,
        monkeypatch,
        image=image,
        mask_image=mask16,
        **_prompt(False, device),
    )
    _assert_same(results, n_encodes=1)


def test_resize_on_device_same_size_equals_stock(device, monkeypatch):
    pipe = _stock_pipeline(xl=False, in_channels=9, device=device)
    image, mask = _pil_inputs("RGB")
    results = _run_both(
        pipe,
        FusedStableDiffusionInpaintPipeline,
        monkeypatch,
        image=image,
        mask_image=mask,
        fused_kwargs={"resize_on_device": True},
        **_prompt(False, device),
    )
    _assert_same(results, n_encodes=1)


def test_the_old_name_preprocess_on_device_is_an_unknown_argument(device):
    pipe = FusedStableDiffusionInpaintPipeline.from_pipe(_stock_pipeline(xl=False, in_channels=9, device=device))
    image, mask = _pil_inputs("L")
    with pytest.raises(TypeError, match="preprocess_on_device"):
        pipe(image=image, mask_image=mask, preprocess_on_device=True, **_prompt(False, device))


def test_resize_on_device_resizes_as_tensors(device, monkeypatch):
    """Opted in, a picture larger than asked is resized on the device by the stock tensor rule (nearest)."""
    pipe = _stock_pipeline(xl=False, in_channels=9, device=device)
    image, mask = _pil_inputs("L", size=128)
    as_tensors = {
        "image": torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)[None],
        "mask_image": torch.from_numpy(np.asarray(mask, dtype=np.float32) / 255)[None, None],
    }
    results = _run_both(
        pipe,
        FusedStableDiffusionInpaintPipeline,
        monkeypatch,
        image=image,
        mask_image=mask,
        height=SIZE,
        width=SIZE,
        fused_kwargs={"resize_on_device": True},
        stock_kwargs=as_tensors,
        **_prompt(False, device),
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
        pipe,
        FusedStableDiffusionInpaintPipeline,
        monkeypatch,
        image=image,
        mask_image=mask,
        masked_image_latents=latents,
        **_prompt(False, device),
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
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=_vae(shift_factor=0.0609, scaling_factor=1.5035),
        text_encoder=None,
        tokenizer=None,
        text_encoder_2=None,
        tokenizer_2=None,
        transformer=transformer,
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
        assert nan_equal(a, b)


@pytest.mark.parametrize("mask_mode", ["L", "RGBA"])
def test_flux_inpaint_same_as_stock(device, monkeypatch, mask_mode):
    from inpaint_fused.diffusers import FusedFluxInpaintPipeline

    pipe = _flux_pipeline(FluxInpaintPipeline, device)
    image, mask = _pil_inputs(mask_mode)
    results = _run_both_flux(
        pipe, FusedFluxInpaintPipeline, monkeypatch, image=image, mask_image=mask, **_flux_prompt(device)
    )
    _assert_same(results, n_encodes=2)  # default strength 0.6: the init image, then the masked image
    assert results[1][2]["mask"].shape == (1, (SIZE // 16) ** 2, 4 * 4)  # packed latent mask


def test_flux_inpaint_grow_and_images_per_prompt(device, monkeypatch):
    from inpaint_fused.diffusers import FusedFluxInpaintPipeline

    pipe = _flux_pipeline(FluxInpaintPipeline, device)
    image, mask = _pil_inputs("L")
    grown = stock.grow_binarized(pipe.mask_processor.preprocess(mask, height=SIZE, width=SIZE), 7)
    results = _run_both_flux(
        pipe,
        FusedFluxInpaintPipeline,
        monkeypatch,
        image=image,
        mask_image=mask,
        num_images_per_prompt=2,
        strength=1.0,
        fused_kwargs={"grow_mask_by": 7},
        stock_kwargs={"mask_image": grown},
        **_flux_prompt(device),
    )
    _assert_same(results, n_encodes=2)
    assert results[1][2]["mask"].shape[0] == 2


@pytest.mark.parametrize("mask_mode", ["L", "RGB"])
def test_flux_fill_same_as_stock(device, monkeypatch, mask_mode):
    from inpaint_fused.diffusers import FusedFluxFillPipeline

    pipe = _flux_pipeline(FluxFillPipeline, device)
    image, mask = _pil_inputs(mask_mode)
    results = _run_both_flux(
        pipe, FusedFluxFillPipeline, monkeypatch, image=image, mask_image=mask, **_flux_prompt(device)
    )
    _assert_same(results, n_encodes=2)  # the init image (prepare_latents), then the masked image
    assert results[1][2]["mask"].shape == (1, (SIZE // 16) ** 2, 64 * 4)  # the full-size mask, folded and packed


def test_flux_fill_grow_batch_and_strength(device, monkeypatch):
    from inpaint_fused.diffusers import FusedFluxFillPipeline

    pipe = _flux_pipeline(FluxFillPipeline, device)
    (a, mask), (b, _) = _pil_inputs("L"), _pil_inputs("L", seed=9)
    grown = stock.grow_binarized(pipe.mask_processor.preprocess(mask, height=SIZE, width=SIZE), 6)
    results = _run_both_flux(
        pipe,
        FusedFluxFillPipeline,
        monkeypatch,
        image=[a, b],
        mask_image=mask,
        strength=0.8,
        fused_kwargs={"grow_mask_by": 6},
        stock_kwargs={"mask_image": grown},
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
    results = _run_both_flux(
        pipe, FusedFluxFillPipeline, monkeypatch, image=image, mask_image=mask, **_flux_prompt(device)
    )
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
            p(
                image=image,
                mask_image=mask,
                masked_image_latents=latents,
                height=SIZE,
                width=SIZE,
                **_flux_prompt(device),
            )
    with pytest.raises(ValueError, match="grow_mask_by"):
        fused(image=image, mask_image=mask, grow_mask_by=-1, height=SIZE, width=SIZE, **_flux_prompt(device))
