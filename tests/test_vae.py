"""The VAE layer: ratio discovery, the one encode path, streaming batched encode and its OOM halving.

Every latent is compared with the stock pipeline (the reference of the seed node, then the VAE's
own encode) on the same VAE. ``ComfyStyleVAE`` stands in for ``comfy.sd.VAE``: the same encode
steps (centre crop by ``spacial_compression_encode()``, ``movedim``, ``process_input``, cast, first
stage, ``.to(output_device).float()``) around a tiny strided convolution. The kernels run on the GPU,
or on the CPU under Triton's interpreter (see conftest).
"""

import logging

import pytest
import torch
from helpers import ComfyStyleVAE, inpaint_inputs

import inpaint_fused as ifd
from inpaint_fused import reference


class OldComfyVAE(ComfyStyleVAE):
    """An old ComfyUI ``VAE``: ``downscale_ratio`` only."""

    spacial_compression_encode = None

    def vae_encode_crop_pixels(self, pixels):
        return reference.vae_encode_crop_pixels(pixels, self.downscale_ratio)


def _stock_inpaint(vae, pixels, mask, grow):
    ratio = vae.downscale_ratio[-1] if isinstance(vae.downscale_ratio, tuple) else vae.downscale_ratio
    if pixels.shape[0] == 1 and mask.dim() > 2 and mask.shape[0] > 1:
        pixels = pixels.expand(mask.shape[0], -1, -1, -1)
    filled, noise_mask = reference.vae_encode_for_inpaint(pixels, mask, grow, ratio)
    # The seed hands an RGBA image on to a VAE that takes RGB (a crash in ComfyUI); ours encodes RGB.
    return vae.encode(filled[..., :3]), noise_mask


def _diffusers_kl():
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(0)
    return diffusers.AutoencoderKL(
        block_out_channels=(8, 8, 8, 8),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=1,
        norm_num_groups=8,
        latent_channels=4,
    ).eval()


def _diffusers_tiny():
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(0)
    return diffusers.AutoencoderTiny(
        encoder_block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8), latent_channels=4
    ).eval()


# --- ratio discovery ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vae", "ratio"),
    [
        (ComfyStyleVAE(8), 8),
        (ComfyStyleVAE(16), 16),
        (ComfyStyleVAE((lambda frames: frames, 16, 16)), 16),
        (OldComfyVAE(8), 8),
    ],
    ids=["new-8", "new-16", "video-tuple", "old-downscale_ratio"],
)
def test_ratio_of_comfy_vaes(vae, ratio):
    assert ifd.vae_downscale_ratio(vae) == ratio


def test_ratio_of_diffusers_vaes():
    assert ifd.vae_downscale_ratio(_diffusers_kl()) == 8
    assert ifd.vae_downscale_ratio(_diffusers_tiny()) == 8


def test_unknown_vae_is_a_type_error():
    with pytest.raises(TypeError, match="vae must be a ComfyUI VAE"):
        ifd.encode(object(), torch.rand(1, 16, 16, 3))
    vae = ComfyStyleVAE(8)
    vae.downscale_ratio = 0
    with pytest.raises(TypeError, match="positive int"):
        ifd.vae_downscale_ratio(vae)


# --- one encode path, against stock ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "mask_batch", "mask_size", "grow", "dtype"),
    [
        ((2, 37, 45), 1, (37, 45), 6, torch.float32),
        ((2, 32, 40), 2, (16, 20), 0, torch.bfloat16),
        ((1, 41, 33), 3, (41, 33), 3, torch.float16),
        ((3, 24, 24), 3, (48, 48), 64, torch.bfloat16),
    ],
    ids=["crop-broadcast-mask", "smaller-mask-grow0", "one-image-many-masks", "larger-mask-grow64"],
)
def test_encode_for_inpaint_equals_stock(device, shape, mask_batch, mask_size, grow, dtype):
    pixels, mask = inpaint_inputs(*shape, mask_batch, mask_size, channels=4)
    fused_vae, stock_vae = ComfyStyleVAE(8, dtype, device), ComfyStyleVAE(8, dtype, device)
    out = ifd.encode_for_inpaint(fused_vae, pixels, mask, grow)
    samples, noise_mask = _stock_inpaint(stock_vae, pixels, mask, grow)
    (fed,), (stock_fed,) = fused_vae.seen, stock_vae.seen
    assert fed.dtype == stock_fed.dtype == dtype and fed.device == stock_fed.device
    assert torch.equal(fed, stock_fed)
    assert fed.stride() == stock_fed.stride()  # channels-last memory, as ComfyUI hands its first stage
    assert torch.equal(out.samples, samples) and out.samples.device == torch.device("cpu")
    assert out.noise_mask.dtype == torch.float32 and torch.equal(out.noise_mask, noise_mask)
    assert out.noise_mask.shape == (mask_batch, 1, shape[1] // 8 * 8, shape[2] // 8 * 8)
    upper = out.noise_mask.numel() if grow > 8 else out.noise_mask.numel() / 2
    assert 0 < out.noise_mask.sum() <= upper


def test_old_comfy_vae_and_ratio_16(device):
    pixels, mask = inpaint_inputs(2, 45, 37, 1, (20, 20), seed=3)
    for make in (lambda: OldComfyVAE(8, device=device), lambda: ComfyStyleVAE(16, device=device)):
        fused_vae, stock_vae = make(), make()
        out = ifd.encode_for_inpaint(fused_vae, pixels, mask, 5)
        samples, noise_mask = _stock_inpaint(stock_vae, pixels, mask, 5)
        assert torch.equal(out.samples, samples) and torch.equal(out.noise_mask, noise_mask)


@pytest.mark.parametrize("ratio", [8, 16])
@pytest.mark.parametrize("offset", [-5, 0, 4])
def test_encode_for_inpaint_was_equals_stock(device, ratio, offset):
    # The seed crops to a multiple of 8 whatever the VAE; the VAE then crops to its own ratio.
    pixels, mask = inpaint_inputs(2, 44, 53, 2, (30, 30), seed=5)
    fused_vae, stock_vae = ComfyStyleVAE(ratio, device=device), ComfyStyleVAE(ratio, device=device)
    out = ifd.encode_for_inpaint_was(fused_vae, pixels, mask, offset)
    filled, noise_mask = reference.was_vae_encode_for_inpaint(pixels, mask, offset, 8)
    assert torch.equal(out.samples, stock_vae.encode(filled))
    assert torch.equal(out.noise_mask, noise_mask) and out.noise_mask.shape == (2, 1, 40, 48)


def test_encode_equals_stock(device):
    pixels, _ = inpaint_inputs(3, 29, 42, 1, (1, 1), channels=4)
    fused_vae, stock_vae = ComfyStyleVAE(8, torch.bfloat16, device), ComfyStyleVAE(8, torch.bfloat16, device)
    latent = ifd.encode(fused_vae, pixels)
    assert torch.equal(latent, reference.vae_encode(stock_vae.encode, pixels, 8))
    assert latent.shape == (3, 4, 3, 5)


def test_comfy_vae_with_other_process_input_gets_pixels(device):
    # A VAE that does not map 2p - 1 must get the gray-filled IMAGE through its own encode.
    pixels, mask = inpaint_inputs(1, 32, 32, 1, (32, 32), seed=7)
    fused_vae, stock_vae = ComfyStyleVAE(8, device=device), ComfyStyleVAE(8, device=device)
    for vae in (fused_vae, stock_vae):
        vae.process_input = lambda image: image
    out = ifd.encode_for_inpaint(fused_vae, pixels, mask, 2)
    samples, _ = _stock_inpaint(stock_vae, pixels, mask, 2)
    assert torch.equal(fused_vae.seen[0], stock_vae.seen[0]) and torch.equal(out.samples, samples)


@pytest.mark.parametrize("make", [_diffusers_kl, _diffusers_tiny], ids=["AutoencoderKL", "AutoencoderTiny"])
def test_diffusers_vaes(device, make):
    vae = make().to(device)
    pixels, mask = inpaint_inputs(2, 37, 43, 2, (37, 43), seed=11)
    out = ifd.encode_for_inpaint(vae, pixels, mask, 6)
    filled, noise_mask = reference.vae_encode_for_inpaint(pixels.to(device), mask.to(device), 6, 8)
    with torch.no_grad():
        encoded = vae.encode(reference.vae_input(filled, vae.dtype).contiguous())
    expected = encoded.latent_dist.mode() if hasattr(encoded, "latent_dist") else encoded.latents
    assert torch.equal(out.samples, expected) and out.samples.device == vae.device
    assert torch.equal(out.noise_mask, noise_mask.cpu()) and out.noise_mask.device == mask.device
    with torch.no_grad():
        plain = vae.encode(reference.vae_input(reference.vae_encode_crop_pixels(pixels.to(device), 8)).contiguous())
    plain = plain.latent_dist.mode() if hasattr(plain, "latent_dist") else plain.latents
    assert torch.equal(ifd.encode(vae, pixels), plain)


# --- streaming batched encode ---------------------------------------------------------------------


@pytest.mark.parametrize(("frames", "per_batch"), [(7, 3), (5, 16), (4, 1)])
def test_encode_batched_equals_stock_slices(device, frames, per_batch):
    pixels, _ = inpaint_inputs(frames, 27, 35, 1, (1, 1), seed=frames, channels=4)
    fused_vae, stock_vae = ComfyStyleVAE(8, device=device), ComfyStyleVAE(8, device=device)
    reported, stock_reported = [], []
    latent = ifd.encode_batched(fused_vae, pixels, per_batch, progress=reported.append)
    expected = reference.vae_encode_batched(stock_vae.encode, pixels, per_batch, 8, stock_reported.append)
    assert torch.equal(latent, expected) and latent.shape == (frames, 4, 3, 4)
    assert [x.shape[0] for x in fused_vae.seen] == [x.shape[0] for x in stock_vae.seen]
    assert reported == [x.shape[0] for x in fused_vae.seen] and sum(reported) == frames
    assert torch.equal(latent, ComfyStyleVAE(8, device=device).encode(pixels[..., :3]))


def test_encode_batched_halves_on_out_of_memory(device):
    pixels, _ = inpaint_inputs(11, 16, 16, 1, (1, 1), seed=2)
    vae = ComfyStyleVAE(8, device=device, max_batch=3)
    reported = []
    latent = ifd.encode_batched(vae, pixels, 8, progress=reported.append)
    # 8 fails, 4 fails, 2 fits; every later slice keeps the size that fitted.
    assert [x.shape[0] for x in vae.seen] == [2, 2, 2, 2, 2, 1]
    assert reported == [2, 2, 2, 2, 2, 1]
    assert torch.equal(latent, ComfyStyleVAE(8, device=device).encode(pixels))


def test_encode_batched_raises_when_one_frame_does_not_fit(device):
    vae = ComfyStyleVAE(8, device=device, max_batch=0)
    with pytest.raises(torch.OutOfMemoryError, match="batch 1 > 0"):
        ifd.encode_batched(vae, torch.rand(3, 16, 16, 3), 2, progress=lambda n: None)


def test_progress_can_cancel(device):
    # ComfyUI raises a user's cancel from its ProgressBar hook; it must stop the encode at once.
    class Cancelled(Exception):
        pass

    def cancel_after_first(n):
        raise Cancelled

    vae = ComfyStyleVAE(8, device=device)
    with pytest.raises(Cancelled):
        ifd.encode_batched(vae, torch.rand(6, 16, 16, 3), 2, progress=cancel_after_first)
    assert len(vae.seen) == 1


@pytest.mark.parametrize(
    ("frames", "mask_batch", "per_batch"), [(5, 5, 2), (5, 1, 3), (1, 4, 3)], ids=["per-frame", "one-mask", "one-image"]
)
def test_encode_for_inpaint_batched_equals_whole(device, frames, mask_batch, per_batch):
    pixels, mask = inpaint_inputs(frames, 35, 26, mask_batch, (18, 13), seed=frames + mask_batch)
    vae = ComfyStyleVAE(8, torch.bfloat16, device)
    reported = []
    out = ifd.encode_for_inpaint_batched(vae, pixels, mask, 4, per_batch, progress=reported.append)
    whole = ifd.encode_for_inpaint(ComfyStyleVAE(8, torch.bfloat16, device), pixels, mask, 4)
    stock, stock_mask = _stock_inpaint(ComfyStyleVAE(8, torch.bfloat16, device), pixels, mask, 4)
    assert torch.equal(out.samples, whole.samples) and torch.equal(out.samples, stock)
    assert torch.equal(out.noise_mask, whole.noise_mask) and torch.equal(out.noise_mask, stock_mask)
    total = max(frames, mask_batch)
    assert sum(reported) == total and max(reported) <= per_batch and out.samples.shape[0] == total


def test_encode_for_inpaint_batched_halves_on_out_of_memory(device):
    pixels, mask = inpaint_inputs(6, 16, 24, 6, (16, 24), seed=9)
    vae = ComfyStyleVAE(8, device=device, max_batch=2)
    out = ifd.encode_for_inpaint_batched(vae, pixels, mask, 6, 5, progress=lambda n: None)
    assert [x.shape[0] for x in vae.seen] == [2, 2, 1, 1]
    stock, stock_mask = _stock_inpaint(ComfyStyleVAE(8, device=device), pixels, mask, 6)
    assert torch.equal(out.samples, stock) and torch.equal(out.noise_mask, stock_mask)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"per_batch": 0}, ValueError, "per_batch must be >= 1"),
        ({"per_batch": 2.0}, TypeError, "per_batch must be an int"),
        ({"mask": torch.zeros(3, 8, 8)}, ValueError, "mask batch 3 does not fit pixels batch 2"),
        ({"mask": torch.zeros(1, 1, 1, 8, 8)}, ValueError, "mask must be"),
        ({"pixels": torch.rand(2, 16, 16)}, ValueError, "pixels must be an IMAGE"),
        ({"mask": [0.0]}, TypeError, "mask must be a torch.Tensor"),
    ],
)
def test_batched_bad_input(kwargs, error, match):
    arguments = {"pixels": torch.rand(2, 16, 16, 3), "mask": torch.zeros(2, 8, 8), "per_batch": 2} | kwargs
    with pytest.raises(error, match=match):
        ifd.encode_for_inpaint_batched(ComfyStyleVAE(8), grow_mask_by=2, progress=lambda n: None, **arguments)


def test_cpu_fallback_is_logged_once(caplog):
    vae = ComfyStyleVAE(8)
    vae.device = torch.device("meta")  # a device where the kernels never run
    with caplog.at_level(logging.INFO, logger="inpaint_fused.vae"):
        ifd.vae_downscale_ratio(vae)
        ifd.vae_downscale_ratio(vae)
    notes = [r for r in caplog.records if "pure-torch reference" in r.getMessage()]
    assert len(notes) == 1 and "meta" in notes[0].getMessage()


@pytest.mark.gpu
def test_streaming_from_pinned_buffers_on_cuda():
    pixels, mask = inpaint_inputs(9, 40, 56, 9, (20, 28), seed=4)
    vae = ComfyStyleVAE(8, torch.float16, "cuda")
    out = ifd.encode_for_inpaint_batched(vae, pixels, mask, 6, 4, progress=lambda n: None)
    whole = ifd.encode_for_inpaint(ComfyStyleVAE(8, torch.float16, "cuda"), pixels, mask, 6)
    assert torch.equal(out.samples, whole.samples) and torch.equal(out.noise_mask, whole.noise_mask)
    latent = ifd.encode_batched(vae, pixels, 4, progress=lambda n: None)
    assert torch.equal(latent, ifd.encode(ComfyStyleVAE(8, torch.float16, "cuda"), pixels))


@pytest.mark.parametrize(
    "call",
    [
        lambda vae, pixels: ifd.encode(vae, pixels),
        lambda vae, pixels: ifd.encode_batched(vae, pixels, 2, progress=lambda n: None),
        lambda vae, pixels: ifd.encode_for_inpaint(vae, pixels, torch.zeros(1, 16, 16), 2),
        lambda vae, pixels: ifd.encode_for_inpaint_was(vae, pixels, torch.zeros(1, 16, 16), 2),
        lambda vae, pixels: ifd.encode_for_inpaint_batched(vae, pixels, torch.zeros(1, 16, 16), 2, 2),
        lambda vae, pixels: ifd.encode_for_inpaint_batched(vae, pixels, torch.zeros(3, 16, 16), 2, 2),
    ],
    ids=["encode", "encode_batched", "for_inpaint", "for_inpaint_was", "inpaint_batched", "inpaint_batched-3-masks"],
)
def test_no_frames_is_named_as_pixels(call):
    vae = ComfyStyleVAE(8)
    with pytest.raises(ValueError, match="pixels must hold at least one frame, got batch 0"):
        call(vae, torch.rand(0, 16, 16, 3))
    assert vae.seen == []


@pytest.mark.parametrize(
    ("pixels", "error", "match"),
    [
        (torch.rand(2, 7, 16, 3), ValueError, "pixels of 7x16 are smaller than the VAE's downscale ratio 8"),
        (torch.randint(0, 255, (2, 16, 16, 3), dtype=torch.uint8), TypeError, "pixels must be a float16"),
        ([[0.0]], TypeError, "pixels must be a torch.Tensor"),
    ],
    ids=["smaller-than-ratio", "uint8", "not-a-tensor"],
)
@pytest.mark.parametrize("batched", [False, True])
def test_encode_bad_pixels(pixels, error, match, batched):
    vae = ComfyStyleVAE(8)
    with pytest.raises(error, match=match):
        if batched:
            ifd.encode_batched(vae, pixels, 2, progress=lambda n: None)
        else:
            ifd.encode(vae, pixels)
    assert vae.seen == []
