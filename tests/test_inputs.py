"""Input policies every entry point shares: the autograd rule, channels-first pixels, meta masks."""

import pytest
import torch

import inpaint_fused as ifd
from inpaint_fused import _backend, reference
from inpaint_fused.diffusers import prepare_masked_image


def _inputs():
    generator = torch.Generator().manual_seed(7)
    pixels = torch.rand(1, 16, 24, 3, generator=generator)
    mask = (torch.rand(1, 16, 24, generator=generator) > 0.6).float()
    return pixels, mask


@pytest.fixture(params=["kernels", "fallback"])
def path(request, monkeypatch):
    """Both dispatch paths: the Triton kernels (interpreted here) and the no-Triton fallback."""
    if request.param == "fallback":
        monkeypatch.setattr(_backend, "uses_triton", lambda device: False)
    return request.param


@pytest.mark.parametrize("which", ["pixels", "mask"])
def test_requires_grad_is_refused_under_grad_mode_on_every_path(path, which):
    pixels, mask = _inputs()
    inputs = {"pixels": pixels, "mask": mask}
    inputs[which] = inputs[which].requires_grad_()
    with pytest.raises(ValueError, match=f"{which} requires grad.*{which}.detach"):
        ifd.prepare_inpaint(inputs["pixels"], inputs["mask"], 6)
    with pytest.raises(ValueError, match=f"{which} requires grad"):
        ifd.prepare_inpaint_was(inputs["pixels"], inputs["mask"], -3)


def test_requires_grad_mask_alone_ops_are_refused(path):
    _, mask = _inputs()
    with pytest.raises(ValueError, match="mask requires grad"):
        ifd.grow_mask(mask.requires_grad_(), 6)
    with pytest.raises(ValueError, match="mask requires grad"):
        ifd.modify_mask(mask.detach().requires_grad_(), 2)


def test_parameters_under_no_grad_are_read_as_data_on_every_path(path):
    pixels, mask = _inputs()
    expected = ifd.prepare_inpaint(pixels, mask, 6, vae_dtype=torch.float32)
    with torch.no_grad():
        out = ifd.prepare_inpaint(torch.nn.Parameter(pixels), torch.nn.Parameter(mask), 6, vae_dtype=torch.float32)
    assert not out.pixels.requires_grad and not out.noise_mask.requires_grad
    assert torch.equal(out.pixels, expected.pixels) and torch.equal(out.noise_mask, expected.noise_mask)
    with torch.inference_mode():
        grown = ifd.grow_mask(torch.nn.Parameter(mask), 3)
    assert torch.equal(grown, ifd.grow_mask(mask, 3))


def test_diffusers_op_follows_the_same_autograd_rule(path):
    image = torch.rand(1, 3, 16, 16) * 2 - 1
    mask = (torch.rand(1, 1, 16, 16) > 0.5).float()
    with pytest.raises(ValueError, match="image requires grad"):
        prepare_masked_image(image.requires_grad_(), mask)
    with torch.no_grad():
        out = prepare_masked_image(torch.nn.Parameter(image.detach()), torch.nn.Parameter(mask))
    assert not out.masked_image.requires_grad
    assert torch.equal(out.masked_image, prepare_masked_image(image.detach(), mask).masked_image)


@pytest.mark.parametrize("channels", [3, 4])
def test_channels_first_pixels_say_what_to_do(channels):
    pixels = torch.rand(1, channels, 64, 48)
    with pytest.raises(ValueError, match=r"looks channels-first.*pixels\.movedim\(1, -1\)"):
        ifd.prepare_inpaint(pixels, torch.zeros(1, 64, 48), 6)
    out = ifd.prepare_inpaint(pixels.movedim(1, -1), torch.zeros(1, 64, 48), 6)
    assert out.pixels.shape == (1, 64, 48, channels)


def test_a_small_image_with_many_channels_is_not_mistaken_for_channels_first():
    with pytest.raises(ValueError, match="smaller than downscale_ratio=8"):
        ifd.prepare_inpaint(torch.rand(1, 5, 16, 3), torch.zeros(1, 5, 16), 6)


def test_meta_mask_with_real_pixels_names_the_mask():
    pixels, _ = _inputs()
    with pytest.raises(ValueError, match="mask is on meta and pixels on cpu"):
        ifd.prepare_inpaint(pixels, torch.zeros(1, 16, 24, device="meta"), 6)
    with pytest.raises(ValueError, match="mask is on meta and image on cpu"):
        prepare_masked_image(torch.rand(1, 3, 16, 16), torch.zeros(1, 1, 16, 16, device="meta"))


def test_the_reference_stays_differentiable():
    """The oracle is the original code: it records gradients as the original nodes would."""
    pixels, mask = _inputs()
    pixels.requires_grad_()
    out, _ = reference.vae_encode_for_inpaint(pixels, mask, 6)
    out.sum().backward()
    assert pixels.grad is not None
