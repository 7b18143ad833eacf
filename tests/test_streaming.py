"""Streaming batched encode: the out-of-memory back-off (halve with ceiling, grow back), progress, errors.

``FlakyVAE`` is the ComfyUI stand-in of test_vae that runs out of memory for batches above a limit on
the calls a schedule picks, and records every attempt, so the sequence of slice sizes is asserted
exactly; every latent is compared with the whole clip encoded at once.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import ComfyStyleVAE, inpaint_inputs

import inpaint_fused as ifd
from inpaint_fused.streaming import SliceSizes
from inpaint_fused.vae import Encoder


class FlakyVAE(ComfyStyleVAE):
    """Raises ``torch.OutOfMemoryError`` for batches above ``limit`` on the calls where ``failing(call)``."""

    def __init__(self, limit, failing=lambda call: True, **kwargs):
        super().__init__(8, **kwargs)
        self.limit = limit
        self.failing = failing
        self.attempts = []  # (frames, ran out of memory) of every encode call, failed ones included

    def encode(self, pixel_samples):
        frames = pixel_samples.shape[0]
        fails = frames > self.limit and self.failing(len(self.attempts))
        self.attempts.append((frames, fails))
        if fails:
            raise torch.OutOfMemoryError(f"stand-in: {frames} frames > {self.limit}")
        return super().encode(pixel_samples)


def _sizes(attempts):
    return [f"{n}!" if failed else n for n, failed in attempts]


def _slice_bounds(attempts):
    """``(start, stop)`` of each slice that was encoded, in order."""
    bounds, start = [], 0
    for n, failed in attempts:
        if not failed:
            bounds.append((start, start + n))
            start += n
    return bounds


def _encoded_in_slices(pixels, attempts, device):
    """The stand-in VAE on the same slices, concatenated: what the back-off promises bit for bit.

    A convolution is not bitwise batch-size-invariant on a GPU (cuDNN picks its algorithm per
    shape), so one encode of the whole clip may differ in the last bits; the stock node too
    batches by free memory.
    """
    vae = ComfyStyleVAE(8, device=device)
    return torch.cat([vae.encode(pixels[a:b]) for a, b in _slice_bounds(attempts)])


# --- the policy alone -----------------------------------------------------------------------------


def test_slice_sizes_halve_with_ceiling():
    sizes = SliceSizes(7)
    seen = [sizes.size]
    for _ in range(3):
        sizes.failed(sizes.size)
        seen.append(sizes.size)
    assert seen == [7, 4, 2, 1]


def test_slice_sizes_grow_back_capped_and_grow_slower_after_a_relapse():
    sizes = SliceSizes(6, patience=3)
    sizes.failed(6)
    assert sizes.size == 3
    sizes.failed(3)
    assert sizes.size == 2
    for expected in (2, 2, 2, 4, 4, 4):  # 3 successes double the size, up to per_batch
        assert sizes.size == expected
        sizes.succeeded()
    assert sizes.size == 6
    sizes.failed(6)  # a size reached by growing fails: the limit looks real, growing again takes twice as long
    assert (sizes.size, sizes.patience) == (3, 6)
    for _ in range(5):
        sizes.succeeded()
    assert sizes.size == 3
    sizes.succeeded()
    assert sizes.size == 6
    sizes.succeeded()  # a success after growing: the next failure is transient again, patience stays
    sizes.failed(6)
    assert (sizes.size, sizes.patience) == (3, 6)


# --- through the encode paths ---------------------------------------------------------------------


def test_halving_uses_the_ceiling(device):
    pixels, _ = inpaint_inputs(7, 16, 16, 1, (1, 1), seed=21)
    vae = FlakyVAE(1, device=device)
    reported = []
    latent = ifd.encode_batched(vae, pixels, 7, progress=reported.append)
    assert _sizes(vae.attempts) == ["7!", "4!", "2!", 1, 1, 1, 1, 1, 1, 1]
    assert reported == [1] * 7
    assert torch.equal(latent, _encoded_in_slices(pixels, vae.attempts, device))


def test_size_recovers_after_a_transient_failure(device):
    pixels, _ = inpaint_inputs(40, 8, 8, 1, (1, 1), seed=22)
    vae = FlakyVAE(2, failing=lambda call: call == 0, device=device)
    reported = []
    latent = ifd.encode_batched(vae, pixels, 4, progress=reported.append)
    # 8 successes at half size (16 frames), then per_batch again for the other 24 frames.
    assert _sizes(vae.attempts) == ["4!"] + [2] * 8 + [4] * 6
    assert reported == [2] * 8 + [4] * 6 and sum(reported) == 40
    assert torch.equal(latent, _encoded_in_slices(pixels, vae.attempts, device))


def test_a_persistent_limit_is_retried_ever_more_rarely(device):
    pixels, _ = inpaint_inputs(60, 8, 8, 1, (1, 1), seed=23)
    vae = FlakyVAE(2, device=device)
    latent = ifd.encode_batched(vae, pixels, 4, progress=lambda n: None)
    assert _sizes(vae.attempts) == ["4!"] + [2] * 8 + ["4!"] + [2] * 16 + ["4!"] + [2] * 6
    assert torch.equal(latent, _encoded_in_slices(pixels, vae.attempts, device))


def test_slices_stay_inside_upload_chunks(device):
    # Chunks of per_batch frames are uploaded one ahead; a smaller slice size cuts each chunk anew.
    pixels, _ = inpaint_inputs(14, 16, 8, 1, (1, 1), seed=24)
    vae = FlakyVAE(4, device=device)
    latent = ifd.encode_batched(vae, pixels, 7, progress=lambda n: None)
    assert _sizes(vae.attempts) == ["7!", 4, 3, 4, 3]
    assert torch.equal(latent, _encoded_in_slices(pixels, vae.attempts, device))


def test_inpaint_batched_recovers_with_identical_latents_and_masks(device):
    pixels, mask = inpaint_inputs(12, 16, 24, 12, (16, 24), seed=25)
    vae = FlakyVAE(1, failing=lambda call: call == 0, device=device)
    reported = []
    out = ifd.encode_for_inpaint_batched(vae, pixels, mask, 3, 2, progress=reported.append)
    assert _sizes(vae.attempts) == ["2!"] + [1] * 8 + [2] * 2
    assert reported == [1] * 8 + [2] * 2
    slices = [
        ifd.encode_for_inpaint(ComfyStyleVAE(8, device=device), pixels[a:b], mask[a:b], 3)
        for a, b in _slice_bounds(vae.attempts)
    ]
    assert torch.equal(out.samples, torch.cat([part.samples for part in slices]))
    assert torch.equal(out.noise_mask, torch.cat([part.noise_mask for part in slices]))
    assert out.noise_mask.shape == (12, 1, 16, 24) and out.noise_mask.sum() > 0


def test_one_frame_out_of_memory_is_a_clear_error(device):
    vae = FlakyVAE(0, device=device)
    with pytest.raises(torch.OutOfMemoryError, match=r"single frame \(frame 0 of 5\)") as caught:
        ifd.encode_batched(vae, torch.rand(5, 16, 16, 3), 4, progress=lambda n: None)
    assert isinstance(caught.value.__cause__, torch.OutOfMemoryError)
    assert "stand-in: 1 frames > 0" in str(caught.value)
    assert _sizes(vae.attempts) == ["4!", "2!", "1!"]


def test_tqdm_bar_counts_frames_without_a_callback(device, capsys):
    pixels, _ = inpaint_inputs(5, 16, 16, 1, (1, 1), seed=26)
    vae = FlakyVAE(1, device=device)
    latent = ifd.encode_batched(vae, pixels, 3)
    assert torch.equal(latent, _encoded_in_slices(pixels, vae.attempts, device))
    err = capsys.readouterr().err
    assert "VAE encode" in err and "5/5" in err


# --- the encoder protocol -------------------------------------------------------------------------


class HalfEncoder(Encoder):
    """An :class:`Encoder` of its own: averages 2x2 blocks of the IMAGE's first channel."""

    ratio, device, dtype, takes_vae_input = 2, torch.device("cpu"), torch.float32, False

    def __init__(self):
        self.calls = []

    def encode_input(self, vae_input):
        raise AssertionError("takes_vae_input is False")

    def encode_pixels(self, pixels):
        self.calls.append(pixels.shape[0])
        return torch.nn.functional.avg_pool2d(pixels[..., :1].movedim(-1, 1), 2)


def test_an_encoder_instance_is_a_vae():
    pixels = torch.rand(3, 5, 7, 3, generator=torch.Generator().manual_seed(27))
    encoder = HalfEncoder()
    latent = ifd.encode_batched(encoder, pixels, 2, progress=lambda n: None)
    assert encoder.calls == [2, 1] and ifd.vae_downscale_ratio(encoder) == 2
    assert torch.equal(latent, torch.nn.functional.avg_pool2d(pixels[:, :4, :6, :1].movedim(-1, 1), 2))
    encoder.ratio = 2.0
    with pytest.raises(TypeError, match="positive int, got 2.0"):
        ifd.encode(encoder, pixels)


def test_core_imports_neither_diffusers_nor_comfy():
    script = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("diffusers", "comfy", "transformers"):
            raise ImportError("blocked " + name)
sys.meta_path.insert(0, Block())
import torch, inpaint_fused as ifd
from helpers import ComfyStyleVAE
assert ifd.encode(ComfyStyleVAE(8), torch.rand(2, 16, 16, 3)).shape == (2, 4, 2, 2)
assert "inpaint_fused.diffusers" not in sys.modules, "a ComfyUI VAE must not load the diffusers adapter"
"""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": f"{root}:{root / 'tests'}"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
