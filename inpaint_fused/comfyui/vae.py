"""The ComfyUI ``VAE`` (``comfy.sd.VAE``) as an :class:`inpaint_fused.vae.Encoder`, duck-typed.

Imports nothing from ComfyUI: a VAE is recognised by ``encode`` plus ``spacial_compression_encode()``
(new versions) or ``downscale_ratio`` (old ones; a tuple's last entry is the spatial ratio of a
video VAE). ``device``, ``vae_dtype`` and ``process_input`` are read when present.
"""

from __future__ import annotations

import copy
from typing import Optional

import torch

from ..check import VAE_DTYPES
from ..vae import Encoder


def _identity(image: torch.Tensor) -> torch.Tensor:
    return image


def _is_two_p_minus_one(process_input: object) -> bool:
    if not callable(process_input):
        return False
    probe = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0])
    try:
        out = process_input(probe)
    except Exception:  # an audio or video transform that does not take this probe is not 2p - 1
        return False
    return isinstance(out, torch.Tensor) and torch.equal(out, probe * 2.0 - 1.0)


class ComfyEncoder(Encoder):
    """A ComfyUI ``VAE``: everything runs through its own ``encode`` (memory management, batching,
    tiled fallback, output device and dtype stay ComfyUI's).

    When ``encode`` maps pixels with its own ``process_input = 2p - 1``, a shallow copy whose
    ``process_input`` is the identity takes the fused kernel's output as is: the first stage receives
    the very values (and, through a channels-last view, the very memory layout) that the stock path
    hands it, without the float32 round trip.
    """

    def __init__(self, vae: object):
        spacial = getattr(vae, "spacial_compression_encode", None)
        ratio = spacial() if callable(spacial) else vae.downscale_ratio
        self.ratio = ratio[-1] if isinstance(ratio, (tuple, list)) else ratio
        self.vae = vae
        self.device = torch.device(getattr(vae, "device", "cpu"))
        self.dtype = getattr(vae, "vae_dtype", torch.float32)
        self.takes_vae_input = (
            self.dtype in VAE_DTYPES
            and "process_input" in vars(vae)
            and _is_two_p_minus_one(vars(vae)["process_input"])
        )

    def encode_input(self, vae_input: torch.Tensor) -> torch.Tensor:
        feeder = copy.copy(self.vae)
        feeder.process_input = _identity
        # ComfyUI hands its first stage ``movedim(-1, 1)`` of an IMAGE: NCHW in channels-last memory.
        return feeder.encode(vae_input.contiguous(memory_format=torch.channels_last).movedim(1, -1))

    def encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.vae.encode(pixels[..., :3])


def encoder_for(vae: object) -> Optional[ComfyEncoder]:
    """A :class:`ComfyEncoder` when ``vae`` looks like ComfyUI's ``VAE``, else ``None``."""
    if callable(getattr(vae, "encode", None)) and (
        hasattr(vae, "spacial_compression_encode") or hasattr(vae, "downscale_ratio")
    ):
        return ComfyEncoder(vae)
    return None
