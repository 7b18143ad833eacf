"""The reference against the SPEC's hand-checked examples and against the seed nodes' own code."""

import math
import re
from pathlib import Path

import pytest
import torch

from inpaint_fused import reference

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"


def _point_mask(size: int, row: int, col: int) -> torch.Tensor:
    mask = torch.zeros(1, size, size)
    mask[0, row, col] = 1.0
    return mask


def _extent(noise: torch.Tensor) -> tuple[int, int, int, int]:
    rows = noise[0, 0].any(dim=1).nonzero().flatten()
    cols = noise[0, 0].any(dim=0).nonzero().flatten()
    return rows.min().item(), rows.max().item(), cols.min().item(), cols.max().item()


@pytest.mark.parametrize(
    ("grow", "up_left", "down_right"),
    [(6, 2, 3), (2, 0, 1), (4, 1, 2), (64, 31, 32), (5, 2, 2), (3, 1, 1), (1, 0, 0), (0, 0, 0)],
)
def test_core_growth_is_asymmetric_for_even_sizes(grow, up_left, down_right):
    pixels = torch.rand(1, 80, 80, 3)
    _, noise = reference.vae_encode_for_inpaint(pixels, _point_mask(80, 40, 40), grow)
    assert noise.shape == (1, 1, 80, 80)
    assert _extent(noise) == (40 - up_left, 40 + down_right, 40 - up_left, 40 + down_right)
    assert int(noise.sum()) == (up_left + down_right + 1) ** 2


@pytest.mark.parametrize("offset", [1, 3, 6])
def test_was_dilation_is_symmetric(offset):
    _, noise = reference.was_vae_encode_for_inpaint(torch.rand(1, 48, 48, 3), _point_mask(48, 20, 30), offset)
    assert _extent(noise) == (20 - offset, 20 + offset, 30 - offset, 30 + offset)


def test_was_erosion_does_not_shrink_from_the_image_border():
    mask = torch.zeros(1, 32, 32)
    mask[0, :, :10] = 1.0  # touches the top, bottom and left borders
    mask[0, 12:20, 16:26] = 1.0  # an inner block
    _, noise = reference.was_vae_encode_for_inpaint(torch.rand(1, 32, 32, 3), mask, -2)
    expected = torch.zeros(32, 32)
    expected[:, :8] = 1.0  # shrinks only from its inner (right) side
    expected[14:18, 18:24] = 1.0  # shrinks by 2 on every side
    assert torch.equal(noise[0, 0], expected)


def test_core_fills_with_the_original_mask_was_with_the_modified_one():
    pixels = torch.full((1, 32, 32, 3), 0.25)
    mask = _point_mask(32, 16, 16)
    core_pixels, core_noise = reference.vae_encode_for_inpaint(pixels, mask, 5)
    was_pixels, was_noise = reference.was_vae_encode_for_inpaint(pixels, mask, 2)
    assert torch.equal(core_noise, was_noise)  # both a 5x5 block
    gray = (core_pixels == 0.5).all(dim=-1)[0]
    assert gray.sum() == 1 and gray[16, 16]
    assert torch.equal((was_pixels == 0.5).all(dim=-1)[0], was_noise[0, 0].bool())


@pytest.mark.parametrize(("size", "offset", "kept"), [(37, 2, 32), (39, 3, 32), (33, 0, 32), (40, 0, 40), (47, 3, 40)])
def test_centred_crop_offsets(size, offset, kept):
    pixels = torch.arange(size * size * 3, dtype=torch.float32).reshape(1, size, size, 3) / (size * size * 3)
    out, noise = reference.vae_encode_for_inpaint(pixels, torch.zeros(1, size, size), 0)
    assert out.shape == (1, kept, kept, 3) and noise.shape == (1, 1, kept, kept)
    expected = ((pixels[:, offset : offset + kept, offset : offset + kept] - 0.5) * 1.0) + 0.5
    assert torch.equal(out, expected)
    assert out[0, 0, 0, 0] == pytest.approx(pixels[0, offset, offset, 0].item())


def test_crop_offsets_follow_the_ratio():
    pixels = torch.rand(1, 50, 70, 3)
    out, _ = reference.vae_encode_for_inpaint(pixels, torch.zeros(1, 50, 70), 0, downscale_ratio=16)
    assert out.shape == (1, 48, 64, 3)
    assert torch.equal(out, (pixels[:, 1:49, 3:67] - 0.5) * 1.0 + 0.5)


def test_round_half_to_even_at_exactly_one_half():
    mask = torch.full((1, 16, 16), 0.5)
    mask[0, :, 8:] = torch.nextafter(torch.tensor(0.5), torch.tensor(1.0))  # the next float32 up
    pixels = torch.full((1, 16, 16, 3), 0.25)
    for grow in (0, 1):
        out, noise = reference.vae_encode_for_inpaint(pixels, mask, grow)
        assert noise[0, 0, :, :8].sum() == 0 and noise[0, 0, :, 8:].all()
        assert (out[0, :, :8] == 0.25).all() and (out[0, :, 8:] == 0.5).all()


def test_unmasked_pixels_still_go_through_the_arithmetic():
    tiny = 1e-9  # (tiny - 0.5) rounds to -0.5 in float32, and + 0.5 gives exactly 0
    values = torch.tensor([tiny, 0.3, 0.7, 1.0], dtype=torch.float32)
    pixels = values.repeat(8, 2).reshape(1, 8, 8, 1).repeat(1, 1, 1, 3)
    out, _ = reference.vae_encode_for_inpaint(pixels, torch.zeros(1, 8, 8), 0)
    assert out[0, 0, 0, 0].item() == 0.0
    expected = (pixels - 0.5) * 1.0 + 0.5
    assert torch.equal(out, expected)
    assert not torch.equal(out, pixels)
    randoms = torch.rand(1, 64, 64, 3, dtype=torch.float64).to(torch.float32)  # full float32 mantissas
    changed = reference.vae_encode_for_inpaint(randoms, torch.zeros(1, 64, 64), 0)[0] != randoms
    assert changed.any()  # some float32 values move by an ulp


def test_mask_batch_one_broadcasts_over_images():
    pixels = torch.rand(3, 16, 16, 3)
    mask = torch.zeros(1, 16, 16)
    mask[0, 4:8, 4:8] = 1.0
    out, noise = reference.vae_encode_for_inpaint(pixels, mask, 2)
    assert noise.shape == (1, 1, 16, 16)
    assert (out[:, 4:8, 4:8] == 0.5).all()
    assert torch.equal(out[:, :4], (pixels[:, :4] - 0.5) * 1.0 + 0.5)


def test_mismatched_mask_batch_fails_as_in_the_seed():
    with pytest.raises(RuntimeError):
        reference.vae_encode_for_inpaint(torch.rand(3, 16, 16, 3), torch.zeros(2, 16, 16), 0)


def test_fourth_channel_passes_through_untouched():
    pixels = torch.rand(2, 19, 21, 4)
    mask = torch.ones(1, 19, 21)
    out, _ = reference.vae_encode_for_inpaint(pixels, mask, 0)
    assert torch.equal(out[..., 3], pixels[:, 1:17, 2:18, 3])
    assert (out[..., :3] == 0.5).all()


def test_mask_is_resized_bilinearly_before_rounding():
    mask = torch.tensor([[[0.0, 1.0], [0.0, 1.0]]])
    _, noise = reference.vae_encode_for_inpaint(torch.rand(1, 8, 8, 3), mask, 0)
    # align_corners=False: columns 0-3 interpolate below 0.5 or exactly 0.5, columns 4-7 above
    assert torch.equal(noise[0, 0], torch.tensor([0, 0, 0, 0, 1, 1, 1, 1.0]).expand(8, 8))


def test_vae_input_layout_and_values():
    pixels = torch.rand(2, 8, 16, 4)
    out = reference.vae_input(pixels, torch.bfloat16)
    assert out.shape == (2, 3, 8, 16) and out.dtype == torch.bfloat16
    assert torch.equal(out, (pixels[..., :3].permute(0, 3, 1, 2) * 2.0 - 1.0).to(torch.bfloat16))


def test_vae_encode_crops_and_drops_alpha():
    seen = []
    reference.vae_encode(lambda p: seen.append(p) or p.sum(), torch.rand(1, 21, 30, 4), downscale_ratio=8)
    assert seen[0].shape == (1, 16, 24, 3)


def test_batched_encode_slices_and_reports_progress():
    pixels = torch.rand(7, 17, 16, 4)
    slices, steps = [], []

    def encode(p):
        slices.append(p.shape[0])
        return p.movedim(-1, 1)[:, :, ::8, ::8] * 2

    out = reference.vae_encode_batched(encode, pixels, per_batch=3, progress=steps.append)
    assert slices == [3, 3, 1] and steps == [3, 3, 3]
    assert torch.equal(out, pixels[:, :16, :, :3].movedim(-1, 1)[:, :, ::8, ::8] * 2)


# --- the seed nodes' own source, run as written -------------------------------------------------


def _seed_namespace(name: str) -> dict:
    for path in sorted(SEEDS.glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        match = re.search(r"```(?:python)?\n(.*?)```", text, re.S)
        if match and f"class {name}" in match.group(1):
            namespace = {"torch": torch, "math": math}
            exec(compile(match.group(1), str(path), "exec"), namespace)
            return namespace
    raise LookupError(name)


needs_seeds = pytest.mark.skipif(not SEEDS.is_dir(), reason=f"the seed node documents are not at {SEEDS}")


class _IdentityVAE:
    downscale_ratio = 8

    @staticmethod
    def encode(pixels):
        return pixels


def _random_inputs(generator, batch, mask_batch, height, width, mask_size, channels=3):
    pixels = torch.rand(batch, height, width, channels, generator=generator)
    mask = torch.rand(mask_batch, *mask_size, generator=generator)
    mask = torch.where(torch.rand(mask.shape, generator=generator) < 0.5, mask.round(), mask)
    return pixels, mask


CASES = [
    (1, 1, 64, 64, (64, 64)),
    (2, 1, 37, 53, (20, 31)),
    (3, 3, 45, 40, (90, 70)),
    (1, 1, 24, 72, (24, 72)),
    (2, 2, 33, 41, (33, 41), 4),
]


@needs_seeds
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("grow", [0, 1, 2, 5, 6, 13, 64])
def test_core_reference_equals_the_seed_code(case, grow):
    seed = _seed_namespace("VAEEncodeForInpaint")["VAEEncodeForInpaint"]()
    pixels, mask = _random_inputs(torch.Generator().manual_seed(grow), *case)
    expected = seed.encode(_IdentityVAE(), pixels, mask, grow)[0]
    out, noise = reference.vae_encode_for_inpaint(pixels, mask, grow)
    assert torch.equal(out, expected["samples"]) and torch.equal(noise, expected["noise_mask"])


@needs_seeds
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("offset", [-40, -6, -1, 0, 1, 6, 40])
def test_was_reference_equals_the_seed_code(case, offset):
    seed = _seed_namespace("WAS_VAEEncodeForInpaint")["WAS_VAEEncodeForInpaint"]()
    pixels, mask = _random_inputs(torch.Generator().manual_seed(offset + 100), *case)
    expected = seed.encode(_IdentityVAE(), pixels, mask, offset)[0]
    out, noise = reference.was_vae_encode_for_inpaint(pixels, mask, offset)
    assert torch.equal(out, expected["samples"]) and torch.equal(noise, expected["noise_mask"])


@needs_seeds
def test_batched_reference_equals_the_seed_code():
    progress = []

    class ProgressBar:
        def __init__(self, total):
            self.total = total

        def update(self, n):
            progress.append(n)

    class VAE(_IdentityVAE):
        def vae_encode_crop_pixels(self, pixels):
            return reference.vae_encode_crop_pixels(pixels, self.downscale_ratio)

        def encode(self, pixels):
            return pixels.movedim(-1, 1) * 2.0 - 1.0

    namespace = _seed_namespace("VAEEncodeBatched")
    namespace["ProgressBar"] = ProgressBar
    pixels = torch.rand(5, 19, 26, 4)
    expected = namespace["VAEEncodeBatched"]().encode(VAE(), pixels, 2)[0]["samples"]
    ours = []
    out = reference.vae_encode_batched(VAE().encode, pixels, 2, progress=ours.append)
    assert torch.equal(out, expected) and ours == progress == [2, 2, 2]
