"""diffusers' ``AutoencoderKL`` and ``AutoencoderTiny`` as an :class:`inpaint_fused.vae.Encoder`, duck-typed.

Imports nothing from diffusers: a VAE is an ``nn.Module`` whose ``config`` has ``block_out_channels``.
It takes NCHW input in [-1, 1] in its dtype on its device; the latent is the posterior mode (KL) or
the latents (Tiny), unscaled, on that device.
"""

from __future__ import annotations

from typing import Optional

import torch

from ..vae import Encoder


class DiffusersEncoder(Encoder):
    """A diffusers ``AutoencoderKL`` (posterior mode) or ``AutoencoderTiny`` (latents), unscaled."""

    takes_vae_input = True

    def __init__(self, vae: torch.nn.Module):
        self.vae = vae
        self.ratio = 2 ** (len(vae.config.block_out_channels) - 1)
        self.device = vae.device
        self.dtype = vae.dtype

    def encode_input(self, vae_input: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            out = self.vae.encode(vae_input)
        if hasattr(out, "latent_dist"):
            return out.latent_dist.mode()
        return out.latents

    def encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        # What ComfyUI's process_input does before its cast: 2p - 1 in the pixels' dtype, then the VAE's.
        vae_input = (pixels[..., :3].movedim(-1, 1) * 2.0 - 1.0).to(self.dtype)
        return self.encode_input(vae_input.contiguous())


def encoder_for(vae: object) -> Optional[DiffusersEncoder]:
    """A :class:`DiffusersEncoder` when ``vae`` looks like a diffusers autoencoder, else ``None``."""
    if isinstance(vae, torch.nn.Module) and hasattr(getattr(vae, "config", None), "block_out_channels"):
        return DiffusersEncoder(vae)
    return None
