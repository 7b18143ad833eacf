"""The run's VAE, from local files only: a diffusers ``AutoencoderKL`` folder or an original-format file.

An original-format (LDM / ComfyUI / A1111) VAE ``.safetensors`` is converted offline: its config
is read off the tensor shapes (channels per level, blocks per level, latent channels, quant convs)
and its keys are renamed by diffusers' own ``convert_ldm_vae_checkpoint``. Such a file does not say
its latent scaling, so ``--scaling-factor`` (and ``--shift-factor`` for SD3/Flux VAEs) is required.
Nothing is downloaded: folders load with ``local_files_only=True``.

Latents are the posterior's mode (its mean), not a sample: deterministic, the same bits on every
run and every split; then scaled as the diffusers pipelines do, ``(latent - shift) * scale``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from .errors import PrecomputeError, require_extra

SCALING_HINT = (
    "0.18215 (SD 1.x/2.x), 0.13025 (SDXL), 1.5305 with --shift-factor 0.0609 (SD3), 0.3611 with --shift-factor"
    " 0.1159 (Flux)"
)
_PREFIXES = ("first_stage_model.", "vae.")


@dataclass
class LoadedVAE:
    """An ``AutoencoderKL`` in eval mode on its device, with what turns its posterior into training latents."""

    vae: torch.nn.Module
    ratio: int
    scaling_factor: float
    shift_factor: Optional[float]
    source: str  # "diffusers" or "original"
    weights_sha256: str  # of the encoder's weights as loaded: a resumed run must use the same VAE

    @property
    def device(self) -> torch.device:
        return self.vae.device

    @property
    def dtype(self) -> torch.dtype:
        return self.vae.dtype

    def encode(self, vae_input: torch.Tensor) -> torch.Tensor:
        """``(N, 3, x, y)`` VAE input (``2p - 1``, VAE dtype and device) -> scaled latent, VAE dtype."""
        with torch.inference_mode():
            latent = self.vae.encode(vae_input).latent_dist.mode()
            if self.shift_factor is not None:
                latent = latent - self.shift_factor
            return latent * self.scaling_factor

    def settings(self) -> dict:
        return {
            "source": self.source,
            "ratio": self.ratio,
            "dtype": str(self.dtype).removeprefix("torch."),
            "latent_channels": self.vae.config.latent_channels,
            "scaling_factor": self.scaling_factor,
            "shift_factor": self.shift_factor,
            "latent": "posterior mode",
            "weights_sha256": self.weights_sha256,
        }


def _strip_prefix(state: dict) -> dict:
    for prefix in _PREFIXES:
        if any(key.startswith(prefix) for key in state):
            return {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}
    return state


def original_config(state: dict) -> dict:
    """An ``AutoencoderKL`` config read off the shapes of an original-format VAE state dict.

    Raises:
        PrecomputeError: keys that are not an LDM ``AutoencoderKL`` encoder/decoder.
    """
    try:
        levels = sorted({int(m.group(1)) for k in state if (m := re.match(r"encoder\.down\.(\d+)\.", k))})
        blocks = {int(m.group(1)) for k in state if (m := re.match(r"encoder\.down\.0\.block\.(\d+)\.", k))}
        channels = [state[f"encoder.down.{i}.block.{max(blocks)}.conv2.weight"].shape[0] for i in levels]
        latent = state["encoder.conv_out.weight"].shape[0] // 2
        in_channels = state["encoder.conv_in.weight"].shape[1]
        out_channels = state["decoder.conv_out.weight"].shape[0]
    except (KeyError, ValueError) as error:
        raise PrecomputeError(
            f"--vae: not an original-format AutoencoderKL state dict (missing {error}); expected keys such as"
            " encoder.down.0.block.0.conv1.weight"
        ) from error
    if levels != list(range(len(levels))) or not levels:
        raise PrecomputeError(f"--vae: encoder levels {levels} are not 0..n-1")
    return {
        "in_channels": in_channels,
        "out_channels": out_channels,
        "down_block_types": ["DownEncoderBlock2D"] * len(levels),
        "up_block_types": ["UpDecoderBlock2D"] * len(levels),
        "block_out_channels": channels,
        "layers_per_block": max(blocks) + 1,
        "latent_channels": latent,
        "use_quant_conv": "quant_conv.weight" in state,
        "use_post_quant_conv": "post_quant_conv.weight" in state,
        "mid_block_add_attention": any(k.startswith("encoder.mid.attn_1.") for k in state),
    }


def _load_original(path: Path, scaling_factor: Optional[float]):
    AutoencoderKL = require_extra("diffusers", "loading a VAE", extra="diffusers").AutoencoderKL
    convert_ldm_vae_checkpoint = require_extra(
        "diffusers.loaders.single_file_utils", "converting an original-format VAE", extra="diffusers"
    ).convert_ldm_vae_checkpoint
    safetensors_torch = require_extra("safetensors.torch", "reading an original-format VAE file")
    if scaling_factor is None:
        raise PrecomputeError(
            f"--scaling-factor: an original-format VAE file does not record its latent scaling; pass it: {SCALING_HINT}"
        )
    state = _strip_prefix(safetensors_torch.load_file(str(path)))
    config = original_config(state)
    vae = AutoencoderKL(**config, scaling_factor=scaling_factor)
    converted = convert_ldm_vae_checkpoint(state, {**config})
    missing, unexpected = vae.load_state_dict(converted, strict=False)
    if missing or unexpected:
        raise PrecomputeError(
            f"--vae: {path.name} does not fit the AutoencoderKL read off its shapes: missing {missing[:4]},"
            f" unexpected {unexpected[:4]}"
        )
    return vae


def load_vae(
    path: Path,
    device: torch.device,
    dtype: Optional[torch.dtype] = None,
    scaling_factor: Optional[float] = None,
    shift_factor: Optional[float] = None,
) -> LoadedVAE:
    """Load a diffusers ``AutoencoderKL`` folder or an original-format ``.safetensors`` file, offline.

    ``dtype`` defaults to bfloat16 on CUDA and float32 on the CPU. ``scaling_factor`` and
    ``shift_factor`` override the folder's config (an original file needs ``scaling_factor``).

    Raises:
        PrecomputeError: a missing path, an unknown file type, a folder diffusers cannot load
            offline, a state dict that is not an AutoencoderKL, a missing scaling factor.
    """
    path = Path(path)
    if dtype is None:
        dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    if path.is_dir():
        AutoencoderKL = require_extra("diffusers", "loading a VAE", extra="diffusers").AutoencoderKL
        try:
            vae = AutoencoderKL.from_pretrained(path, local_files_only=True, torch_dtype=dtype, low_cpu_mem_usage=False)
        except (OSError, ValueError) as error:
            raise PrecomputeError(f"--vae: cannot load a diffusers AutoencoderKL from {path} ({error})") from error
        source = "diffusers"
        shift = shift_factor if shift_factor is not None else getattr(vae.config, "shift_factor", None)
    elif path.is_file() and path.suffix == ".safetensors":
        vae = _load_original(path, scaling_factor)
        source = "original"
        shift = shift_factor
    elif path.exists():
        raise PrecomputeError(f"--vae: {path} is neither a diffusers folder nor a .safetensors file")
    else:
        raise PrecomputeError(f"--vae: {path} does not exist")
    scale = scaling_factor if scaling_factor is not None else vae.config.scaling_factor
    vae = vae.to(dtype=dtype)
    digest = _encoder_digest(vae)
    vae = vae.to(device=device).eval().requires_grad_(False)
    ratio = 2 ** (len(vae.config.block_out_channels) - 1)
    return LoadedVAE(vae, ratio, float(scale), None if shift is None else float(shift), source, digest)


def _encoder_digest(vae: torch.nn.Module) -> str:
    """SHA-256 of the encoder and quant conv weights (what encoding reads), in state-dict order."""
    digest = hashlib.sha256()
    for name, tensor in vae.state_dict().items():
        if name.startswith(("encoder.", "quant_conv.")):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
