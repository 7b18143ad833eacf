"""Helpers shared by the test files (tests never import each other): stable seeds, poisoned allocations,
random inputs, expected outputs built from the reference and the comparison the fused contract allows,
and a stand-in for ComfyUI's VAE."""

from __future__ import annotations

import contextlib
import zlib

import torch
import torch.nn.functional as F

from inpaint_fused import reference

NEAR_TIE = 1e-6


def stable_seed(*parts) -> int:
    """A seed from a test's parameters that is the same in every process (``hash`` of a str is salted)."""
    return zlib.crc32(repr(parts).encode())


@contextlib.contextmanager
def poisoned_allocations():
    """Every tensor the op allocates starts as NaN (floats) or 0xFF (bytes: every scratch bit set).

    Both allocation calls the launchers use (``torch.empty``, ``torch.empty_strided``) fill what they
    return, so an output element or scratch byte that a kernel fails to write shows up in the result.
    """
    real_empty, real_empty_strided = torch.empty, torch.empty_strided

    def poison(tensor: torch.Tensor) -> torch.Tensor:
        return tensor.fill_(float("nan") if tensor.dtype.is_floating_point else 0xFF)

    torch.empty = lambda *args, **kwargs: poison(real_empty(*args, **kwargs))
    torch.empty_strided = lambda *args, **kwargs: poison(real_empty_strided(*args, **kwargs))
    try:
        yield
    finally:
        torch.empty, torch.empty_strided = real_empty, real_empty_strided


def nan_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Same dtype, shape and values, NaN where the other has NaN."""
    return (
        a.dtype == b.dtype
        and a.shape == b.shape
        and torch.equal(a.isnan(), b.isnan())
        and torch.equal(a.nan_to_num(), b.nan_to_num())
    )


def random_pixels(shape, dtype=torch.float32, device="cpu", generator=None) -> torch.Tensor:
    """Uniform [0, 1) with full mantissas (``torch.rand`` float32 values never move under ``(p-0.5)+0.5``)."""
    return torch.rand(shape, dtype=torch.float64, generator=generator).to(device=device, dtype=dtype)


def random_mask(shape, device="cpu", generator=None, soft: bool = True, density: float = 0.4) -> torch.Tensor:
    """0/1 pixels (``density`` of them 1) with soft values mixed in, so rounding, growth and resizing matter.

    Growth saturates a dense mask: sweeps over the window size use a sparse one (or sparse holes).
    """
    hard = (torch.rand(shape, generator=generator) < density).float()
    if not soft:
        return hard.to(device)
    values = torch.rand(shape, generator=generator)
    return torch.where(torch.rand(shape, generator=generator) < 0.3, values, hard).to(device)


def expected(pixels, mask, value, *, was=False, ratio=8, vae_dtype=None, near_tie=NEAR_TIE):
    """The seed's outputs for the fused API's inputs: (pixels or VAE input, noise mask float32, reach mask).

    The reach covers resized values within ``near_tie`` of 0.5 (see ``_near_tie_reach``).
    """
    mask = mask.reshape(-1, mask.shape[-2], mask.shape[-1]).to(pixels.device)
    if pixels.shape[0] == 1 and mask.shape[0] > 1:
        pixels = pixels.expand(mask.shape[0], -1, -1, -1)
    encode = reference.was_vae_encode_for_inpaint if was else reference.vae_encode_for_inpaint
    out, noise = encode(pixels, mask, value, ratio)
    if vae_dtype is not None:
        out = reference.vae_input(out, vae_dtype)
    return out, noise.to(torch.float32), _near_tie_reach(pixels, mask, value, was, ratio, near_tie)


def _near_tie_reach(pixels, mask, value, was, ratio, near_tie):
    """Where a bilinear value within ``near_tie`` of 0.5 could change a result: those pixels, grown by the window.

    A resize may round differently from PyTorch's (another evaluation order, fused multiply-adds on the
    GPU): a few ulps of the mask's compute dtype, far below ``NEAR_TIE`` for float32.
    """
    height, width = pixels.shape[1:3]
    if (mask.shape[-2], mask.shape[-1]) == (height, width):
        return None  # an identity resize: ties are exact and must round half to even
    resized = F.interpolate(mask.reshape(-1, 1, *mask.shape[-2:]).double(), size=(height, width), mode="bilinear")
    x, y = height // ratio * ratio, width // ratio * ratio
    oh, ow = height % ratio // 2, width % ratio // 2
    ties = ((resized[:, :, oh : oh + x, ow : ow + y] - 0.5).abs() <= near_tie).float()
    radius = abs(value)
    if radius:
        ties = F.max_pool2d(ties, 2 * radius + 1, stride=1, padding=radius)
    return ties.bool()


def assert_matches(out, ref, reach=None, what="output", channels_last=False):
    """Bit-equal, except (for a resized mask) inside the reach of near-0.5 bilinear values.

    ``reach`` is ``(Bm, 1, x, y)``; ``out`` is NCHW-like, or ``(N, x, y, C)`` with ``channels_last``.
    """
    assert out.shape == ref.shape, f"{what}: shape {tuple(out.shape)} != {tuple(ref.shape)}"
    assert out.dtype == ref.dtype, f"{what}: dtype {out.dtype} != {ref.dtype}"
    same = (out == ref) | (out.isnan() & ref.isnan())
    if reach is not None:
        if channels_last:
            allowed = reach[:, 0, :, :, None].expand(out.shape[0], -1, -1, out.shape[-1])
        else:
            allowed = reach.expand(out.shape[0], out.shape[1], -1, -1)
        allowed = allowed.to(out.device)
        bad = ~same & ~allowed
    else:
        bad = ~same
    assert not bad.any(), f"{what}: {int(bad.sum())} of {out.numel()} elements differ from the reference"


class ComfyStyleVAE:
    """The interface of ComfyUI's ``VAE`` that the encode paths use, with a per-frame conv first stage."""

    def __init__(self, ratio=8, dtype=torch.float32, device="cpu", max_batch=None):
        generator = torch.Generator().manual_seed(1234)
        spatial = ratio[-1] if isinstance(ratio, tuple) else ratio
        self.first_stage_model = torch.nn.Conv2d(3, 4, kernel_size=spatial, stride=spatial)
        with torch.no_grad():
            for parameter in self.first_stage_model.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator))
        self.first_stage_model.to(device=device, dtype=dtype)
        self.downscale_ratio = ratio
        self.device = torch.device(device)
        self.vae_dtype = dtype
        self.output_device = torch.device("cpu")
        self.process_input = lambda image: image * 2.0 - 1.0
        self.max_batch = max_batch  # first-stage batches above this raise out-of-memory
        self.seen = []  # what the first stage received

    def spacial_compression_encode(self):
        return self.downscale_ratio[-1] if isinstance(self.downscale_ratio, tuple) else self.downscale_ratio

    def vae_encode_crop_pixels(self, pixels):
        ratio = self.spacial_compression_encode()
        for dim, size in enumerate(pixels.shape[1:-1]):
            if size % ratio:
                pixels = pixels.narrow(dim + 1, size % ratio // 2, size // ratio * ratio)
        return pixels

    def encode(self, pixel_samples):
        pixel_samples = self.vae_encode_crop_pixels(pixel_samples).movedim(-1, 1)
        pixels_in = self.process_input(pixel_samples).to(self.vae_dtype).to(self.device)
        if self.max_batch is not None and pixels_in.shape[0] > self.max_batch:
            raise torch.OutOfMemoryError(f"stand-in: batch {pixels_in.shape[0]} > {self.max_batch}")
        self.seen.append(pixels_in)
        with torch.no_grad():
            return self.first_stage_model(pixels_in).to(self.output_device).float()


def inpaint_inputs(batch, height, width, mask_batch, mask_size, seed=0, channels=3):
    """Pixels ``(batch, height, width, channels)`` in [0, 1) and masks ``(mask_batch, *mask_size)``."""
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.rand((batch, height, width, channels), generator=generator)
    # Soft values in a window (rounding matters) and zero elsewhere (growth has room to show).
    h, w = mask_size
    mask = torch.zeros((mask_batch, h, w))
    window = mask[:, h // 4 : h // 4 + max(1, h // 3), w // 3 : w // 3 + max(1, w // 4)]
    window.copy_(torch.rand(window.shape, generator=generator))
    return pixels, mask


# opcheck's cheap checks: the full set costs about 20 s per op on a CPU.
OPCHECK = ("test_schema", "test_autograd_registration", "test_faketensor")


def soft_mask(shape, device, seed, dtype=torch.float32):
    """A grey mask in [0, 1) drawn in float64 (so every dtype sees the same values), seeded."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g, dtype=torch.float64).to(device=device, dtype=dtype)
